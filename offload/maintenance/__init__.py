"""Duties run by one elected leader per store: promote, rescue, cron, prune."""

from offload.maintenance._leader import Maintenance

__all__ = ["Maintenance"]
