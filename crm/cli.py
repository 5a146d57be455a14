"""The ``crm`` command line: thin wiring of jobs; each command module registers its commands."""

from crm.apps import app
from crm.commands import data  # noqa: F401  (registers commands)

__all__ = ["app"]


def main() -> None:  # pragma: no cover - entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
