"""The registry of public modules that the generic suite (test_modules_generic.py) checks.

Each case builds a module with physical units, says which parameter to give a wrong unit, and
how to drive one step. Every ``tests/registry_*.py`` file defines a list ``CASES`` of its area's
modules; adding a public module means adding a case there.
"""

from __future__ import annotations

import importlib
import pathlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

import torchbrain as tb


@dataclass
class Case:
    name: str
    cls: type
    kwargs: dict[str, Any]                  # constructor arguments, with units
    wrong_unit: dict[str, Any]              # an override that must raise UnitError
    input_scale: float = 1.0                # magnitude of the canonical test input
    size: tuple[int, ...] = (6,)
    drive: Callable[[tb.Module, torch.Tensor], torch.Tensor] = None
    # False for gradient-free modules (plasticity rules): their States never carry a graph
    graph_states: bool = True

    def make(self, **overrides):
        return self.cls(self.size if len(self.size) > 1 else self.size[0],
                        **{**self.kwargs, **overrides})

    def step(self, module, x):
        return module(x) if self.drive is None else self.drive(module, x)




def all_cases() -> list[Case]:
    cases = []
    for path in sorted(pathlib.Path(__file__).parent.glob("registry_*.py")):
        cases.extend(importlib.import_module(f"tests.{path.stem}").CASES)
    return cases
