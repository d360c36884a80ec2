"""A run owns its directory: a lock held while it runs, and a run id recorded in every file it writes.

- :func:`claim` takes ``.slimlab.lock`` (an ``flock``, released when the process ends, even by
  ``kill -9``), so two processes never write into one directory at once.
- A new run refuses a directory that already holds files, unless ``overwrite``: then it deletes the
  files of the slimlab run found there (never files a run does not write).
- A default output name that is taken gets a numbered suffix (:func:`next_free`: ``runs/x-2``, ...).
- The run id (12 hex digits) goes into every checkpoint, every ``metrics.jsonl`` line, ``summary.json``
  and the first line of ``config.yaml``, so ``--resume`` can refuse a directory that mixes two runs.
"""

from __future__ import annotations

import os
import re
import stat
import uuid
from pathlib import Path

from slimlab.errors import SlimlabError
from slimlab.io import TMP_SUFFIX

LOCK = ".slimlab.lock"
# every file a slimlab command writes into its run directory
RUN_FILES = ("config.yaml", "metrics.jsonl", "summary.json", "last.pt", "best.pt", "curves.png", "noise.json",
             "channels.png", "label_issues.json", "label_issues.csv", "label_issues.png", "pred_probs.npy",
             "model.onnx", "model.ts.pt", "model.yaml", "profile.json", "model.onnx.json", "model.ts.pt.json",
             "tensorboard", "sensitivity.json", "corrected_labels.json", "corrected_labels.npy", "prune_state.pt",
             "label_folds")
# files a recipe keeps beside a step's run (its markers), which do not make the directory someone else's
_KEPT = ("step.json", "step-started.json")
_HEADER = re.compile(r"^# slimlab run ([0-9a-f]{12})\s*$")


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def config_header(run_id: str) -> str:
    """The first line of a run's config.yaml (a YAML comment, so the file stays a plain config)."""
    return f"# slimlab run {run_id}\n"


def config_run_id(path: str | Path) -> str | None:
    """The run id in the first line of a config.yaml, or None (a config written before run ids)."""
    try:
        with open(path) as f:
            m = _HEADER.match(f.readline())
    except OSError:
        return None
    return m.group(1) if m else None


def _entries(path: Path) -> list[str]:
    """What a directory holds, less the lock, a recipe's markers and hidden files (.DS_Store, leftovers of
    an atomic write killed half-way, an editor's swap file beside a run's config)."""
    return sorted(e.name for e in path.iterdir() if not e.name.startswith(".") and e.name not in _KEPT)


def _hidden(path: Path) -> list[str]:
    """A directory's hidden entries that are not slimlab's own (its lock, .DS_Store, atomic-write leftovers): in
    a folder with nothing else (a ``.git``-only repository, a home directory) they make it someone's, not empty."""
    return sorted(e.name for e in path.iterdir() if e.name.startswith(".") and e.name not in (LOCK, ".DS_Store")
                  and not e.name.endswith(TMP_SUFFIX))


def next_free(path: str | Path) -> Path:
    """``path`` if it is free (missing or empty), else the first free ``path-2``, ``path-3``, ..."""
    path = Path(path)
    cand, n = path, 1
    while cand.exists() and (_entries(cand) or _hidden(cand)):
        n += 1
        cand = path.with_name(f"{path.name}-{n}")
    return cand


class RunDir:
    """A claimed run directory: ``path``, the ``run_id``, and the lock (held until :meth:`release`)."""

    def __init__(self, path: Path, run_id: str, fd: int | None, created: tuple[Path, ...] = (), own_lock: bool = True,
                 replaced: tuple[str, ...] = ()):
        self.path, self.run_id, self._fd, self.created = path, run_id, fd, created  # created: the folders made
        self.own_lock = own_lock  # the lock file was made by this claim
        self.replaced = replaced  # the old run's files --overwrite replaces, deleted by clear()

    def clear(self) -> None:
        """Delete the files of the run being replaced (``--overwrite``). A command calls it once its inputs have
        loaded, just before it writes: one that fails before then (a missing --init, a bad option) leaves the old
        run as it was."""
        if self.replaced:
            _delete(self.path, self.replaced)
            self.replaced = ()

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
            self._remove_if_unused()

    def _remove_if_unused(self) -> None:
        """A directory left with nothing but the lock this run made (it failed before writing anything) loses the
        lock, and goes too when this run created it: a refused command leaves no trace in the user's folders."""
        if not (self.created or self.own_lock):
            return
        try:
            if [e.name for e in self.path.iterdir()] == [LOCK]:
                (self.path / LOCK).unlink()
                for d in self.created:  # the run directory, then the parents made for it (runs/), while empty
                    d.rmdir()
        except OSError:
            pass  # another process took it meanwhile, or a parent holds something else

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _lock(path: Path) -> int:
    import fcntl

    try:  # never through a link: a planted .slimlab.lock -> ~/notes.txt would be truncated
        fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as e:
        raise SlimlabError(f"{path / LOCK} cannot be opened as slimlab's lock ({e.strerror}): a link or other file "
                           "is in its place; remove it") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise SlimlabError(f"{path / LOCK} is not a regular file: remove it")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise SlimlabError(f"another slimlab process (pid {holder}) is writing to {path}: wait for it to end, "
                           "or choose another --out") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def refuse_inputs_inside(out: str | Path, inputs: dict[str, str]) -> None:
    """One line before ``--overwrite`` deletes a run directory that holds a file the command reads ({what: path}):
    the command would fail half-way, or run on, without its source."""
    o = Path(out).expanduser().resolve()
    for what, path in inputs.items():
        src = Path(path).expanduser().resolve() if path else None
        if src is not None and (src == o or o in src.parents):
            raise SlimlabError(f"--out {out} holds {what} ({path}): --overwrite would delete it; choose another --out")


def lock(path: str | Path) -> RunDir:
    """Lock ``path`` (created if missing) without looking at what it holds: a recipe's output directory."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise SlimlabError(f"--out {path} is a file, not a directory")
    created = tuple(p for p in (path, *path.parents) if not p.exists())
    path.mkdir(parents=True, exist_ok=True)
    return RunDir(path, "", _lock(path), created)


CLAIMED: list[Path] = []  # the run directories this process took, in order (an interrupted command names its own)


def claim(path: str | Path, *, overwrite: bool = False, resume_id: str | None = None) -> RunDir:
    """Take ``path`` for a run: lock it and check what it holds.

    A new run (``resume_id`` None) needs an empty directory, or ``overwrite`` and a directory that holds
    only a slimlab run's files (those are deleted). A resumed run keeps the files and its id."""
    had_lock = (Path(path) / LOCK).exists()
    held = lock(path)
    fd, path = held._fd, Path(path)
    try:
        replaced = _make_room(path, overwrite) if resume_id is None else ()
        CLAIMED.append(path)
        return RunDir(path, resume_id or new_run_id(), fd, held.created, own_lock=not had_lock, replaced=replaced)
    except BaseException:
        os.close(fd)
        if not had_lock and not held.created:  # a folder of the user's that was refused keeps no lock file of ours
            (path / LOCK).unlink(missing_ok=True)
        raise


def _make_room(path: Path, overwrite: bool) -> tuple[str, ...]:
    """Check that ``path`` may take a new run; returns the old run's files to delete (:meth:`RunDir.clear`)."""
    found = _entries(path)
    if not found:
        hidden = _hidden(path)
        if hidden:
            raise SlimlabError(f"--out {path} is not empty and not a slimlab run (it holds {_some(hidden)}): "
                               "choose another --out")
        return ()
    foreign = [n for n in found if n not in RUN_FILES or _foreign_kind(path / n)]
    if not foreign and set(found) <= _PLAIN_NAMES and not config_run_id(path / "config.yaml"):
        foreign = found  # a user's own config.yaml (or model.yaml) alone, not a run's: never deleted
    if foreign:
        raise SlimlabError(f"--out {path} is not empty and not a slimlab run (it holds {_some(foreign)}): "
                           "choose another --out")
    if not overwrite:
        raise SlimlabError(f"--out {path} already holds a run ({_some(found)}): pass --overwrite to replace it, "
                           "--resume to continue it (train, prune), or choose another --out")
    if not config_run_id(path / "config.yaml"):  # files named as a run's, but no run's config says they are one
        raise SlimlabError(f"--out {path} holds {_some(found)} but no slimlab run's config.yaml (its first line "
                           "names the run): --overwrite deletes only a run's files; move them, or choose another --out")
    return tuple(found)


def _delete(path: Path, found: tuple[str, ...]) -> None:
    for name in found:
        p = path / name
        if not (p.exists() or p.is_symlink()):
            continue
        if p.is_dir() and not p.is_symlink():  # tensorboard/ or label_folds/, holding only their files (checked)
            for f in p.iterdir():
                f.unlink()
            p.rmdir()
        else:  # a file, or a link (only the link goes: nothing it points to is touched)
            p.unlink()
    if (path / "step.json").is_file():  # a recipe's "done" marker describes the run being replaced
        (path / "step.json").unlink()
    for e in path.iterdir():  # temporary files of atomic writes killed half-way (never a user's .swp)
        if e.name.endswith(TMP_SUFFIX) and any(e.name.startswith(f".{n}.") for n in RUN_FILES) and e.is_file():
            e.unlink()


# names a user's own files often have: alone in a folder, they make it a run's only with a run's config header
_PLAIN_NAMES = {"config.yaml", "model.yaml"}


# the folders a run writes, and the only files each holds: TensorBoard's events, labels' k-fold cache
_RUN_DIRS = {"tensorboard": re.compile(r"events\.out\.tfevents\..*"),
             "label_folds": re.compile(r"fold\d+of\d+\.pt|\.fold\d+of\d+\.pt\..*" + re.escape(TMP_SUFFIX))}


def _foreign_kind(p: Path) -> bool:
    """A run file's name on something a run does not write there: a real folder (other than a run's own folders
    holding only their own files), or one of those that is not. A link is a run's only if it points at no folder."""
    if p.name in _RUN_DIRS:
        return not _run_dir_of(p, _RUN_DIRS[p.name])
    return p.is_dir()


def _run_dir_of(d: Path, names: re.Pattern) -> bool:
    """A real folder that holds only plain files named as ``names`` says."""
    return d.is_dir() and not d.is_symlink() and all(
        f.is_file() and not f.is_symlink() and names.fullmatch(f.name) for f in d.iterdir())


def _some(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
