"""Integrations with other tools, each built on offload's hooks through its public API. Each
module imports its tool's package only when it is used: `import offload` loads none of them."""
