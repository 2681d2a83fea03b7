"""cluster.yaml must pass Ray's own autoscaler validation, offline."""

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

CLUSTER_YAML = Path(__file__).resolve().parents[1] / "cluster.yaml"


@pytest.fixture(scope="module")
def cluster_config() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text())


def test_cluster_yaml_passes_ray_validation(cluster_config):
    prepared = prepare_config(copy.deepcopy(cluster_config))
    validate_config(prepared)
    nodes = prepared["available_node_types"]
    head = nodes[prepared["head_node_type"]]
    assert head["resources"]["CPU"] == 0, "the head must not run trials"
    gpu_workers = [n for name, n in nodes.items() if n["resources"].get("GPU", 0) >= 1]
    assert gpu_workers, "cluster.yaml needs an autoscaling GPU worker type"
    assert all(n["max_workers"] > n.get("min_workers", 0) for n in gpu_workers)


def test_cluster_yaml_installs_the_project_and_sets_shared_storage(cluster_config):
    setup = " ".join(cluster_config["setup_commands"])
    assert "pip install" in setup and "steerage-ray" in setup
    assert "STEERAGE_STORAGE" in setup


def test_validation_rejects_a_broken_config(cluster_config):
    broken = copy.deepcopy(cluster_config)
    broken["available_node_types"]["gpu_worker"]["min_workrs"] = 1  # misspelt field
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(broken))
