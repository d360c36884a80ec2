"""The Python API's surface: every name it exports exists and says what it does; no internal helper leaks."""

import pytest

from slimlab import api


def test_every_export_exists_and_has_a_docstring():
    missing = [n for n in api.__all__ if not hasattr(api, n)]
    undocumented = [n for n in api.__all__ if callable(getattr(api, n)) and not (getattr(api, n).__doc__ or "").strip()]
    assert missing == [] and undocumented == []


def test_internal_helpers_are_not_exported():
    internal = {"Prepared", "make_loaders", "plot_curves", "default_out", "data_meta", "prepare_data"}
    assert not internal & set(api.__all__)
    assert {"prune_module", "save_pruned", "load_pruned", "find_label_issues", "corrupt", "train"} <= set(api.__all__)


def test_run_task_runs_every_task_by_name_and_names_the_known_ones():
    import pytest

    from slimlab.errors import SlimlabError

    with pytest.raises(SlimlabError, match=r"unknown task 'demos' \(known: .*demo.*run"):
        api.run_task("demos", None)
    check = api.RunConfig(recipe="fast_cifar10", check=True, set=["download=true"])  # CIFAR-10 need not be here
    assert api.run_task("run", check)  # above the table too


def test_slimlabs_own_input_errors_are_value_errors_like_the_losses():
    """A library user catching ValueError for bad input caught the losses' checks but not corrupt()'s."""
    import numpy as np

    from slimlab.errors import SlimlabError
    from slimlab.noise import corrupt

    assert issubclass(SlimlabError, ValueError)
    with pytest.raises(ValueError, match="rate"):
        corrupt(np.array([0, 1, 2]), "symmetric", 1.5, num_classes=3, seed=0)
