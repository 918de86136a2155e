"""One exceptions tree (``errors.py``): every error class the package defines is there,
under ``AgentError``, and drawn in the module's docstring."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import publisher_hls_agent
from publisher_hls_agent import errors

pytestmark = pytest.mark.unit


def defined_errors() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module in pkgutil.walk_packages(publisher_hls_agent.__path__, "publisher_hls_agent."):
        if module.name.endswith("__main__"):
            continue  # runs the command line
        loaded = importlib.import_module(module.name)
        for name, value in vars(loaded).items():
            if inspect.isclass(value) and issubclass(value, BaseException) \
                    and value.__module__.startswith("publisher_hls_agent"):
                found[f"{value.__module__}.{name}"] = value
    return found


def test_every_error_of_the_package_lives_in_errors_under_agent_error() -> None:
    found = defined_errors()
    assert len(found) >= 20
    for where, error in found.items():
        if error.__name__.startswith("_"):
            continue  # private control flow, never raised past its module
        assert error.__module__ == errors.__name__, f"{where} is defined outside errors.py"
        assert issubclass(error, errors.AgentError), where


def test_the_docstring_draws_every_error() -> None:
    doc = errors.__doc__ or ""
    for name, value in vars(errors).items():
        if inspect.isclass(value) and issubclass(value, errors.AgentError):
            assert name in doc, f"{name} is missing from the tree"


def test_the_standard_bases_callers_catch_are_kept() -> None:
    assert issubclass(errors.ConfigError, ValueError)
    assert issubclass(errors.H264PayloadError, ValueError)
    assert issubclass(errors.PlaylistError, ValueError)
    assert issubclass(errors.FileRefused, OSError)
    assert issubclass(errors.SignalError, ConnectionError)
    # retried on OSError by the worker's reconnect loop: these must not be
    assert not issubclass(errors.CredentialsRejected, OSError)
    assert not issubclass(errors.RegistrationError, OSError)
