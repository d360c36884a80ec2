"""`slimlab run NAME`: a shipped recipe by name, a file of that name in the working directory first."""

import pytest

from slimlab.errors import SlimlabError
from slimlab.tasks.run import RECIPES, load_recipe, recipe_path, shipped_recipes


def test_a_shipped_recipe_is_found_by_name_with_or_without_its_suffix():
    assert "fast_cifar10" in shipped_recipes() and "thinet_resnet56_cifar10" in shipped_recipes()
    assert recipe_path("fast_cifar10") == recipe_path("fast_cifar10.yaml") == RECIPES / "fast_cifar10.yaml"
    assert load_recipe("thinet_resnet56_cifar10")["name"] == "thinet-resnet56-cifar10"


def test_a_local_file_comes_first_and_an_unknown_name_lists_the_shipped_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fast_cifar10.yaml").write_text("name: mine\nsteps: [{name: a, kind: models}]\n")
    assert load_recipe("fast_cifar10.yaml")["name"] == "mine"  # the user's own file, not the shipped one
    assert load_recipe("fast_cifar10")["name"] == "mine"  # by name too
    (tmp_path / "fast_cifar10.yaml").unlink()
    (tmp_path / "fast_cifar10.yml").write_text("name: mine-yml\nsteps: [{name: a, kind: models}]\n")
    assert load_recipe("fast_cifar10")["name"] == "mine-yml"
    (tmp_path / "fast_cifar10.yml").unlink()
    assert load_recipe("fast_cifar10")["name"] == "fast-cifar10"  # then the shipped one
    with pytest.raises(SlimlabError, match=r"recipe 'nope' not found: .*fast_cifar10.*thinet_vgg16_cifar10"):
        load_recipe("nope")
    with pytest.raises(SlimlabError, match="config file not found: sub/nope.yaml"):
        load_recipe("sub/nope.yaml")  # a path is never looked up among the shipped recipes
