"""Public: `from ferroscore.scorer import Scorer`, the offline scorer (`ferroscore.offline`)."""

from ferroscore.offline.scorer import RowError, Scorer

__all__ = ["RowError", "Scorer"]
