"""``torch.library`` custom ops: one per hot operation (pure-torch reference = CPU path)."""

from .event_ell import event_ell_matvec, event_ell_matvec_reference

__all__ = ["event_ell_matvec", "event_ell_matvec_reference"]
