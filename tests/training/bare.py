"""Load a registered model in a child process that cannot import the repository: no site hooks
(the editable install's finder is one), no repository folder on ``sys.path`` (the virtual
environment's own folders aside), a working directory outside it. What the child saw comes back
as JSON for the test to assert on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CHILD = r"""
import ast, importlib.metadata, importlib.util, json, sys
from pathlib import Path

site_dirs, repo, environment, uri = json.loads(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
sys.path.extend(site_dirs)


def in_repo(path):  # the virtual environment may live in the repository folder: it is not its code
    resolved = Path(path or ".").resolve()
    return resolved.is_relative_to(repo) and not resolved.is_relative_to(environment)


seen = {
    "repo_on_path": [p for p in sys.path if in_repo(p)],
    "cwd_in_repo": in_repo("."),
    "importable_before": [
        n for n in ("features", "serving", "training", "crm") if importlib.util.find_spec(n)
    ],
}
import mlflow.pyfunc

model = mlflow.pyfunc.load_model(uri)
seen["scored"] = len(model.predict(model.input_example))
code = Path(sys.modules["serving"].__file__).resolve().parents[1]
seen["code_dir"], seen["code_in_repo"] = str(code), in_repo(code)
seen["project_modules"] = sorted(n for n in sys.modules if n.split(".")[0] in ("training", "crm"))
# the distributions of what the logged code imports, among the modules this load actually imported
local = {"features", "serving"}
distributions = importlib.metadata.packages_distributions()
needed = {}
for name, module in list(sys.modules.items()):
    path = getattr(module, "__file__", None)
    if not path or not Path(path).resolve().is_relative_to(code):
        continue
    for node in ast.walk(ast.parse(Path(path).read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for top in {n.split(".")[0] for n in names}:
            if top in sys.modules and top not in local and top not in sys.stdlib_module_names:
                needed[top] = sorted(d.lower().replace("_", "-") for d in distributions.get(top, [top]))
requirements = Path(mlflow.pyfunc.get_model_dependencies(uri)).read_text().split()
seen["requirements"] = sorted(r.split("==")[0].lower() for r in requirements if r and r[0].isalpha())
seen["needed"] = needed  # module -> the distributions that provide it (any one will do)
print(json.dumps(seen))
"""


def load_in_bare_process(uri: str, tracking_uri: str, cwd: Path) -> dict:
    """Load ``uri`` and score its input example in a child process that cannot import the
    repository; returns what it saw (see ``CHILD``)."""
    site_dirs = sorted({sysconfig.get_paths()[k] for k in ("purelib", "platlib")})
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"MLFLOW_TRACKING_URI": tracking_uri}
    args = [json.dumps(site_dirs), str(REPO), str(Path(sys.prefix).resolve()), uri]
    done = subprocess.run(
        [sys.executable, "-S", "-c", CHILD, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_portable(seen: dict, *distributions: str) -> None:
    """The child could not import the repository, loaded the model from the code logged with it,
    scored its example, and the model's requirements name every distribution its code imported
    (and ``distributions``), not the project's own."""
    assert not seen["repo_on_path"] and not seen["cwd_in_repo"] and not seen["importable_before"], seen
    assert seen["scored"] > 0 and not seen["code_in_repo"] and not seen["project_modules"], seen
    requirements = set(seen["requirements"])
    missing = {module: dists for module, dists in seen["needed"].items() if not set(dists) & requirements}
    assert not missing and set(distributions) <= requirements, (missing, seen["requirements"])
    assert "crm-ml" not in seen["requirements"], seen
