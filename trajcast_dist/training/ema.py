"""Exponential moving average of the weights, used for validation, `best` and the exported model."""

import contextlib

import torch

__all__ = ["EMA"]


class EMA:
    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = float(decay)
        self.shadow = [p.detach().clone() for p in model.parameters()]

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for shadow, p in zip(self.shadow, model.parameters()):
            shadow.lerp_(p.detach(), 1.0 - self.decay)

    @contextlib.contextmanager
    def applied(self, model: torch.nn.Module):
        """The model carries the averaged weights inside the block, its own weights again after it."""
        saved = [p.detach().clone() for p in model.parameters()]
        with torch.no_grad():
            for p, shadow in zip(model.parameters(), self.shadow):
                p.copy_(shadow)
        try:
            yield model
        finally:
            with torch.no_grad():
                for p, own in zip(model.parameters(), saved):
                    p.copy_(own)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "shadow": [t.cpu() for t in self.shadow]}

    def load_state_dict(self, state: dict) -> None:
        for shadow, saved in zip(self.shadow, state["shadow"]):
            shadow.copy_(saved)
