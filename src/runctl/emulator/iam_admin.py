"""Placeholder: this emulated API is not implemented yet."""

from __future__ import annotations

from runctl.emulator.module import Module


class IamAdmin(Module):
    name = "iam_admin"
