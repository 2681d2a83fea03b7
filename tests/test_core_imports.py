"""The algorithm core imports no Ray: each core module is imported in a fresh interpreter
(one for all of them, checked after each import, so the first module that pulls Ray in
is named)."""

import json
import subprocess
import sys

CORE_MODULES = [
    "steerage_ray.checks",
    "steerage_ray.families",
    "steerage_ray.pareto",
    "steerage_ray.named_objectives",
    "steerage_ray.storage",
    "steerage_ray.space",
    "steerage_ray.space.nested",
    "steerage_ray.space.features",
    "steerage_ray.space.neighbours",
    "steerage_ray.data",
    "steerage_ray.data.specs",
    "steerage_ray.models",
    "steerage_ray.training",
    "steerage_ray.complexity_estimate",
    "steerage_ray.latency",
    "steerage_ray.predictor",
    "steerage_ray.evolution",
    "steerage_ray.strategies",
    "steerage_ray.strategies.plan",
    "steerage_ray.strategies.surrogate",
    "steerage_ray.strategies.candidates",
    "steerage_ray.strategies.guided",
    "steerage_ray.strategies.paper",
    "steerage_ray.local_search",
    "steerage_ray.local_search.masked",
    "steerage_ray.local_search.graph",
    "steerage_ray.local_search.scann",
    "steerage_ray.local_search.convnet",
    "steerage_ray.local_search.nest",
    "steerage_ray.local_search.export",
    "steerage_ray.local_search.candidate",
    "steerage_ray.local_search.schemes",
    "steerage_ray.local_search.result",
    "steerage_ray.report",
    "steerage_ray.experiment",
]

RAY_LAYER = "steerage_ray.local_search.tasks"  # imported last: proves the check can fail

CHECK = """
import importlib, json, sys
core, ray_layer = json.loads(sys.argv[1]), sys.argv[2]
first = None
for name in core:
    importlib.import_module(name)
    if "ray" in sys.modules:
        first = name
        break
importlib.import_module(ray_layer)
print(json.dumps({"first_with_ray": first, "ray_layer_has_ray": "ray" in sys.modules}))
"""


def test_no_core_module_imports_ray():
    out = subprocess.run([sys.executable, "-c", CHECK, json.dumps(CORE_MODULES), RAY_LAYER],
                         capture_output=True, text=True, check=True).stdout
    found = json.loads(out.strip().splitlines()[-1])
    assert found["first_with_ray"] is None, f"importing {found['first_with_ray']} imported ray"
    assert found["ray_layer_has_ray"], f"{RAY_LAYER} should import ray: is the check broken?"
