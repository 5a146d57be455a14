"""The ``crm`` command line: thin wiring of jobs; each command module registers its commands."""

# Importing a command module registers its commands on the typer apps (one line per module).
import crm.commands.churn  # noqa: F401
import crm.commands.data  # noqa: F401
import crm.commands.demo  # noqa: F401
import crm.commands.events  # noqa: F401
import crm.commands.features  # noqa: F401
import crm.commands.recommender  # noqa: F401
import crm.commands.serve  # noqa: F401
import crm.commands.uplift  # noqa: F401
import crm.commands.value  # noqa: F401
from crm.apps import app

__all__ = ["app"]


def main() -> None:  # pragma: no cover - entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
