"""Experiments, one module per paper, and the runner they share.

A paper module *declares*; the runner *does*. Each module implements :class:`Experiment`:
its config spec (a :class:`replib._validate.Spec`), its profiles, its units (arm, seed),
how one unit trains (through :func:`replib.train.fit`), its claims (decided by
:mod:`replib.claims`), and its figures, tables and the facts its prose quotes. The
runner owns everything around that: resolving and validating overrides (and a notebook's
parameters, :func:`check_parameters`), seeding (one rule, :mod:`replib.seeding`),
timing, resume, checking a stored result before it is shown, locking and writing
results. :mod:`replib.report` owns the house style and exports.
"""

from __future__ import annotations

import ast
import datetime as _dt
import difflib
import importlib
import json
import os
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Protocol, runtime_checkable

import torch

from .. import results as store
from .. import scale, seeding
from ..progress import bar as progress_bar
from ..train import flush_denormals
from .._validate import ConfigError, Spec, SubSpec, UserError, validate_config
from ..claims import verdict  # noqa: F401  (re-exported: the verdict of a result's claims)

# Published chapters: each has a committed `cpu` result and a page in the book.
PAPERS = ("hinton2012", "wan2013", "ba2013", "graham2015", "tompson2015", "devries2017", "gal2016_mc", "gal2016_rnn", "guo2016",
          "atlas")
# Drafts: code, notebook and tests exist and run at every profile, but no `cpu` result has
# been committed yet, so the book does not show them.
DRAFTS = ()
PROFILES = ("smoke", "cpu", "paper")
NO_TRAIN_ENV = "REPLIB_NO_TRAIN"

Unit = tuple[str, int]
RUN_EXTRAS = ("precision",)  # what a unit may report besides metrics and curves, stored with its run


@runtime_checkable
class Experiment(Protocol):
    """What every paper module provides (a test holds each module in PAPERS and DRAFTS to it).

    - ``PAPER``, ``TITLE``: its key and the chapter's title; ``CITE``: the paper's key in
      ``book/references.bib``; ``HEADLINE``: the claim tested, in one line (the landing page);
      ``DATASETS``: the folders of the data mirror its units read (what the ray executor's
      ``ship_data`` sends to the workers).
    - ``Config``: the config spec; ``PROFILES``: for ``smoke``, ``cpu`` and ``paper``, the
      entries that differ from ``Config``'s defaults, plus ``seeds`` (how many).
    - ``PAPER_VALUES``: the paper's numbers, each with ``where`` it was read and whether it is ``confirmed``.
    - ``units(config, seeds, done)``: the (arm, seed) pairs to run, in order; ``done`` maps
      the finished ones to their runs, so later units may depend on earlier runs.
    - ``run_one(config, arm, seed, progress)``: train and evaluate one unit, already seeded
      by the runner; return ``{"metrics": {...}, "curves": {...}}``, optionally with ``precision``
      (the arithmetic it trained in and why, :func:`replib.precision.choose`), kept with the run.
    - ``claims(config, runs)``: the claims, built with :mod:`replib.claims`.
    - ``FIGURES`` / ``TABLES``: stable name -> function of the result returning a figure / DataFrame.
    - ``facts(result)``: name -> formatted text, the numbers the chapter's prose quotes.

    Optionally, for experiments whose seeds of an arm can train as one stacked ensemble
    (:mod:`replib.ensemble`), both of:

    - ``build_net(config, arm)``: one arm's net, as ``run_one`` builds it (the runner seeds
      before each call, so every member has the initialisation it would have alone);
    - ``run_stack(config, arm, seeds, nets, progress)``: train ``nets`` (one per seed, in
      order) together, each with its own data order and masks; return one
      ``{"metrics", "curves"}`` per seed, as ``run_one`` would.
    """

    PAPER: str
    TITLE: str
    CITE: str
    HEADLINE: str
    DATASETS: tuple[str, ...]
    Config: type[Spec]
    PROFILES: dict[str, dict[str, Any]]
    PAPER_VALUES: list[dict]
    FIGURES: dict[str, Callable[[dict], Any]]
    TABLES: dict[str, Callable[[dict], Any]]

    def units(self, config: dict, seeds: list[int], done: dict[Unit, dict]) -> list[Unit]: ...

    def run_one(self, config: dict, arm: str, seed: int, progress: bool = True) -> dict: ...

    def claims(self, config: dict, runs: list[dict]) -> list[dict]: ...

    def facts(self, result: dict) -> dict[str, str]: ...


class ResultUnavailableError(UserError, RuntimeError):
    """A stored result was needed and there is none to use: training is forbidden (``$REPLIB_NO_TRAIN``,
    set by ``make book``), or the command never trains (``reanalyse``)."""


class StaleResultError(UserError, RuntimeError):
    """A stored result that does not match its runs, its config's units or the current analysis."""


def get(paper: str) -> ModuleType:
    if paper not in PAPERS + DRAFTS:
        raise ValueError(f"paper must be one of {list(PAPERS + DRAFTS)}, got {paper!r}")
    return importlib.import_module(f"{__name__}.{paper}")


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {list(PROFILES)}, got {profile!r}")
    return profile


def seed_list(seeds: int) -> list[int]:
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds is the number of seeds (0, 1, ..., seeds-1) and must be an int >= 1, got {seeds!r}")
    return list(range(seeds))


def check_flag(value: object, name: str) -> bool:
    """``value`` if it is a real bool. A string such as ``"false"`` (what papermill passes for ``-p rerun false``:
    it converts only ``True`` and ``False``) would count as true, so it is refused, saying how to pass it."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r} ({type(value).__name__}); "
                         f"in papermill write `-p {name} True` or `-p {name} False` (it converts only those two words)")
    return value


def check_threads(threads: object) -> int | None:
    """``threads`` if it is None (torch's default) or an int >= 1."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads is the number of torch CPU threads and must be an int >= 1 or None "
                         f"(torch's default), got {threads!r}")
    return threads


def resolve(module: ModuleType, profile: str, seeds: int | None = None, **overrides) -> tuple[dict, list[int]]:
    """The validated config of ``module`` at ``profile`` with ``overrides``, and the seed list.

    A profile's ``None`` is a value like any other (``train_size: None``: every image); an
    override of ``None`` means "the profile's value". A dict, in a profile or an override, is
    merged key by key, at every depth, into the value it changes (the spec's default, then the
    profile's): ``cifar={"p": 0.3}`` changes only ``p``, and ``arms={"none": {"share": 0.5}}``
    only that arm's share; an override's entry of ``None`` inside it keeps the value it would
    replace. Unknown keys and values of the wrong type or range raise
    :class:`replib._validate.ConfigError` naming them.
    """
    values = {}
    for layer, keep_none in ((module.PROFILES[check_profile(profile)], True), (overrides, False)):
        for key, value in layer.items():
            if key == "seeds":
                continue
            if isinstance(value, dict):
                value = _merged(values[key] if key in values else _default(module.Config, key), value, keep_none)
            if value is not None or keep_none:
                values[key] = value
    config = validate_config(module.Config, values, what=f"{module.PAPER} config")
    return config, seed_list(seeds if seeds is not None else module.PROFILES[profile]["seeds"])


def _default(spec: type[Spec], key: str) -> Any:
    """The default of ``spec``'s field ``key`` as plain data (None for an unknown key: validation names it)."""
    field = spec.model_fields.get(key)
    if field is None:
        return None
    default = field.get_default(call_default_factory=True)
    if isinstance(default, dict):
        return {k: v.model_dump() if isinstance(v, SubSpec) else v for k, v in default.items()}
    return default.model_dump() if isinstance(default, SubSpec) else default


def _merged(base: Any, update: dict, keep_none: bool = False) -> dict | None:
    """``update`` laid over ``base`` key by key at every depth; ``None`` entries keep ``base``'s, unless
    ``keep_none`` (a profile's ``None`` is a value)."""
    out = dict(base) if isinstance(base, dict) else {}
    for key, value in update.items():
        if isinstance(value, dict):
            value = _merged(out.get(key), value, keep_none)
        if value is not None or keep_none:
            out[key] = value
    return out or None


def same_experiment(a: dict, b: dict) -> bool:
    """Whether two configs are the same experiment (:func:`replib.results.experiment`): equal but for the device."""
    return store.experiment(a) == store.experiment(b)


def is_default(module: ModuleType, profile: str, config: dict, seeds: list[int]) -> bool:
    """Whether ``config`` and ``seeds`` are ``profile``'s own: no override changed anything but the device.

    Where a run trains is not part of the experiment: a ``paper`` run on a GPU is the
    profile's result (``paper.json``), and records its hardware in its provenance.
    """
    default, default_seeds = resolve(module, profile)
    return seeds == default_seeds and same_experiment(config, default)


def path_of(module: ModuleType, profile: str, config: dict, seeds: list[int], results_dir: Path | None = None) -> Path:
    """Where the result of this config and these seeds is stored: ``<profile>.json`` only for the profile's
    own, else ``<profile>-<key>.json`` (:func:`replib.results.config_key`). The device is in neither: a run on a
    GPU and one on a CPU are the same experiment, and share a file."""
    key = None if is_default(module, profile, config, seeds) else store.config_key(config, seeds)
    return store.result_path(module.PAPER, profile, results_dir, key)


def result_path_of(paper: str | ModuleType, profile: str = "cpu", *, seeds: int | None = None,
                   results_dir: Path | None = None, **overrides) -> Path:
    """The file :func:`run` with these arguments reads or writes."""
    module = paper if isinstance(paper, ModuleType) else get(paper)
    config, seed_ids = resolve(module, profile, seeds, **overrides)
    return path_of(module, profile, config, seed_ids, results_dir)


NOTEBOOKS_DIR = store.REPO_ROOT / "notebooks"
_PAPERMILL_CELL = "# Parameters"  # the first line of the cell papermill injects after the `parameters` cell


def check_parameters(namespace: dict, paper: str) -> None:
    """Raise :class:`replib._validate.ConfigError` if a chapter was given a parameter it does not declare.

    Papermill injects every ``-p name value`` as an assignment, whether the notebook has
    such a parameter or not, so ``-p epoch 2`` (for ``epochs``) would otherwise run the
    profile's default silently. The run cell of every chapter calls this with
    ``globals()`` before anything runs. The declared parameters are the names assigned in
    the ``parameters`` cell of the source notebook ``notebooks/<paper>.ipynb``. Refused,
    each with its close matches among them:

    - a name assigned by papermill's injected cell (found in the kernel's input history
      ``In``) that is not declared;
    - any other global holding a plain value that is neither declared nor assigned by the
      notebook's own code (so running its cells again by hand is fine). Modules,
      functions, classes and other callables, ``_private`` names, IPython's ``In`` /
      ``Out`` and papermill's ``PAPERMILL_*`` paths are never parameters.
    """
    source = NOTEBOOKS_DIR / f"{paper}.ipynb"
    try:
        cells = [c for c in json.loads(source.read_text())["cells"] if c["cell_type"] == "code"]
    except FileNotFoundError:
        raise FileNotFoundError(f"{source} not found: the parameters of {paper!r} are declared there") from None
    text = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells]
    tagged = [t for c, t in zip(cells, text) if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        raise ValueError(f"{source} must have exactly one cell tagged 'parameters', found {len(tagged)}")
    declared = _assigned(tagged[0])
    own = {name for t in text for name in _assigned(t)}
    history = namespace.get("In") if isinstance(namespace.get("In"), list) else []
    injected = {name for cell in history if isinstance(cell, str) and cell.lstrip().startswith(_PAPERMILL_CELL)
                for name in _assigned(cell)}
    stray = {name for name, value in namespace.items()
             if not (name.startswith("_") or name in ("In", "Out") or name in own
                     or callable(value) or isinstance(value, ModuleType))}
    unknown = sorted(name for name in injected | stray if name not in declared and not name.startswith("PAPERMILL_"))
    if unknown:
        def hint(name: str) -> str:
            close = difflib.get_close_matches(name, declared, n=3, cutoff=0.6)
            return f"did you mean {' or '.join(map(repr, close))}?" if close else "nothing close"
        bad = "; ".join(f"{name!r} ({hint(name)})" for name in unknown)
        raise ConfigError(f"notebooks/{paper}.ipynb has no parameter {bad}. Its parameters: "
                          f"{', '.join(declared)} (`papermill --help-notebook notebooks/{paper}.ipynb` "
                          f"explains each)")


def _assigned(code: str) -> list[str]:
    """The names a cell's code assigns, in order (IPython's %magic and !shell lines left out); none if it does
    not parse."""
    lines = [line for line in code.splitlines() if not line.lstrip().startswith(("%", "!"))]
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return []
    names = [node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)]
    return list(dict.fromkeys(names))


def units_of(module: ModuleType, config: dict, seeds: list[int], done: dict | None = None) -> list[Unit]:
    """The (arm, seed) pairs an experiment runs, in order, given the runs ``done`` so far."""
    return [tuple(u) for u in module.units(config, seeds, done or {})]


def verify(module: ModuleType, result: dict, path: Path) -> None:
    """Raise :class:`StaleResultError` unless ``result`` is exactly what its runs and the current code give.

    Its runs must be those written when it was trained (their digest), cover exactly the
    config's units, and its claims and paper values must equal what the current analysis
    computes from them.
    """
    fix = (f"train it again with `python -m replib reproduce {module.PAPER} --profile {result['profile']} --rerun` "
           f"(a chapter: `-p rerun True`)")
    if result["paper"] != module.PAPER:
        raise StaleResultError(f"{path}: it is a result of {result['paper']!r}, not of {module.PAPER!r}; {fix}")
    if not store.runs_intact(result):
        raise StaleResultError(f"{path}: its runs are not those it was written with (edited, added or deleted "
                               f"after training; their digest differs); {fix}")
    have = [(r["arm"], r["seed"]) for r in result["runs"]]
    runs = {unit: r for unit, r in zip(have, result["runs"])}
    want = units_of(module, result["config"], result["seeds"], runs)
    if have != want:
        raise StaleResultError(f"{path}: its runs {have} are not the units {want} its config and seeds ask for; {fix}")
    analyse = f"`python -m replib reanalyse {module.PAPER} --profile {result['profile']}`"
    computed = store.normalise(module.claims(result["config"], result["runs"]))
    if result["claims"] != computed:
        stored = {c["id"]: c.get("outcome") for c in result["claims"]}
        now = {c["id"]: c["outcome"] for c in computed}
        raise StaleResultError(f"{path}: its claims ({stored}) differ from those the current analysis computes "
                               f"from its runs ({now}); run {analyse}")
    if result["paper_values"] != store.normalise(module.PAPER_VALUES):
        raise StaleResultError(f"{path}: its paper values differ from the module's PAPER_VALUES; run {analyse}")


def run(
    paper: str | ModuleType,
    profile: str = "cpu",
    *,
    seeds: int | None = None,
    rerun: bool = False,
    threads: int | None = None,
    progress: bool = True,
    stack: bool = False,
    executor: str = "local",
    address: str | None = None,
    ship_data: bool = False,
    results_dir: Path | None = None,
    **overrides,
) -> store.StoredResult:
    """Return the result of ``paper`` at ``profile``: from its file when the config matches, else by running.

    ``paper`` is a key of :data:`PAPERS` or an experiment module. ``overrides`` (e.g.
    ``epochs=5``, ``device="cuda"``) replace entries of the profile's config; ``None``
    means "profile default". ``rerun``, ``progress`` must be bools, ``threads`` None or
    an int >= 1, ``seeds`` None or an int >= 1.

    The profile's own config and seeds are stored as ``<profile>.json``; any other as
    ``<profile>-<key>.json`` (:func:`path_of`), so an experiment with overrides never
    replaces the result the book shows. The returned :class:`replib.results.StoredResult`
    says which file (``.path``), whether this call wrote it (``.written``) and which
    units it trained (``.trained``).

    ``stack``: train the pending seeds of each arm together as one stacked ensemble, for
    experiments that provide ``build_net`` and ``run_stack`` (:class:`Experiment`). Whether it
    pays depends on the machine (``benchmarks/bench_ensemble.py`` measures it); like the
    device, it is not part of the result's key: a member is the net trained alone in
    distribution, not bit for bit, and each run records the seeds it was stacked with.

    ``executor``: ``"local"`` trains the units one after another in this process; ``"ray"`` makes each
    pending unit a Ray task (:mod:`replib.scale`) on a local Ray with this machine's cores, or on the
    cluster at ``address`` (``"auto"``, ``"ray://<host>:<port>"``). Units that depend on earlier ones
    run in rounds. Either way the driver alone writes the files, each unit as it finishes, and a unit
    trains as it would in process (``threads`` per task, 1 if not given), so the metrics do not depend
    on the executor; a run trained on Ray records ``"executor": "ray"``. ``ship_data``: the workers read
    the data this machine sends them (``module.DATASETS``, through Ray's object store) instead of their
    own mirror or cache.

    A stored result is verified (:func:`verify`) before it is returned. Finished (arm,
    seed) runs of the same config are never repeated: they are read back from the result
    or partial file (and, for a run with other seeds, from the profile's own result). A
    resumed run keeps the partial file's start time and records when it was resumed.
    Training holds the lock on the result path (:func:`replib.results.locked`) from start
    to end. A result or partial file that cannot be read raises
    :class:`replib.results.ResultFileError`, unless ``rerun``, which moves it aside and
    says so. With ``$REPLIB_NO_TRAIN`` set, a missing or mismatched result raises
    instead of training.
    """
    check_flag(rerun, "rerun")
    check_flag(progress, "progress")
    check_flag(stack, "stack")
    check_threads(threads)
    scale.check_executor(executor, address, ship_data)
    module = paper if isinstance(paper, ModuleType) else get(paper)
    if stack and executor != "local":
        raise ValueError(f"stack=True trains in this process; it cannot be combined with executor={executor!r}")
    if stack and not stacks(module):
        raise ValueError(f"stack=True: {module.PAPER} cannot train its seeds stacked; the experiments that can: "
                         f"{stacking()}")
    config, seed_ids = resolve(module, profile, seeds, **overrides)
    path = path_of(module, profile, config, seed_ids, results_dir)
    if not rerun and (cached := _stored(module, path, config, seed_ids)) is not None:
        return cached
    if store.env_flag(NO_TRAIN_ENV):
        why = "no result file" if not path.exists() else "its config or seeds differ from the requested ones"
        raise ResultUnavailableError(
            f"{path}: {why}, and ${NO_TRAIN_ENV} forbids training here. Run "
            + (f"`make reproduce PAPER={module.PAPER} PROFILE={profile}`" if path.name == f"{profile}.json" else
               "this same call (the same seeds and parameters, which it is stored under)")
            + f" first, or unset {NO_TRAIN_ENV}."
        )
    if threads is not None and executor == "local":
        torch.set_num_threads(threads)
    flush_denormals()
    with store.locked(path):
        if not rerun and (cached := _stored(module, path, config, seed_ids)) is not None:
            return cached  # another run finished it while this one waited for the lock
        return _train(module, profile, config, seed_ids, path, rerun=rerun, progress=progress, stack=stack,
                      executor=executor, address=address, ship_data=ship_data, threads=threads)


def published(paper: str | ModuleType, profile: str = "cpu", *, results_dir: Path | None = None) -> store.StoredResult:
    """The verified result of ``profile``'s own config and seeds, as the book shows it; never trains.

    Raises :class:`ResultUnavailableError` when there is no such result and :class:`StaleResultError`
    when the stored one no longer matches its runs or the current analysis (:func:`verify`).
    """
    module = paper if isinstance(paper, ModuleType) else get(paper)
    config, seed_ids = resolve(module, check_profile(profile))
    path = path_of(module, profile, config, seed_ids, results_dir)
    if (cached := _stored(module, path, config, seed_ids)) is None:
        why = "no result file" if not path.exists() else "its config or seeds are not the profile's"
        raise ResultUnavailableError(f"{path}: {why}; run `make reproduce PAPER={module.PAPER} PROFILE={profile}`")
    return cached


def stacking() -> list[str]:
    """The experiments that can train their seeds stacked (:func:`stacks`)."""
    return [p for p in PAPERS + DRAFTS if stacks(get(p))]


def stacks(module: ModuleType) -> bool:
    """Whether ``module`` can train the seeds of an arm as one stacked ensemble (``build_net`` and ``run_stack``)."""
    return callable(getattr(module, "build_net", None)) and callable(getattr(module, "run_stack", None))


def _stored(module: ModuleType, path: Path, config: dict, seeds: list[int]) -> store.StoredResult | None:
    """The verified result in ``path`` if it holds exactly ``config`` and ``seeds`` (on whichever device it was
    trained: its provenance says which), else None."""
    cached = store.read_result(path)
    if cached is None or not same_experiment(cached["config"], config) or cached["seeds"] != seeds:
        return None
    verify(module, cached, path)
    return store.StoredResult(cached, path)


def _train(module: ModuleType, profile: str, config: dict, seed_ids: list[int], path: Path, *,
           rerun: bool, progress: bool, stack: bool = False, executor: str = "local", address: str | None = None,
           ship_data: bool = False, threads: int | None = None) -> store.StoredResult:
    """Run the units not yet done and write the result; the caller holds the lock on ``path``."""
    paper, partial = module.PAPER, store.partial_path(path)
    if rerun:
        for file, keys in ((path, store.RESULT_KEYS), (partial, store.PARTIAL_KEYS)):
            try:
                store.read_result(file, keys)
            except store.ResultFileError as error:
                aside = store.move_aside(file)
                print(f"{file} could not be read, so this rerun moved it aside to {aside.name}: {error}",
                      file=sys.stderr)
    done: dict[Unit, dict] = {}
    started, resumed, load_at_start = store.now(), [], store.load_average()
    if not rerun:
        previous = store.read_result(partial, store.PARTIAL_KEYS)
        if previous is not None and previous["config"] != config and same_experiment(previous["config"], config):
            # Its runs do not record their device, so they cannot join these; and overwriting them would lose them.
            raise ResultUnavailableError(
                f"{partial} holds {len(previous['runs'])} finished units of this experiment trained on "
                f"{previous['config']['device']!r}; a run on {config['device']!r} cannot add to them. Finish it on "
                f"{previous['config']['device']!r}, or train every unit here with --rerun (-p rerun True)")
        if previous is not None and previous["config"] == config:
            # Resuming: the run began when the partial file's first unit did.
            started = _dt.datetime.fromisoformat(previous["provenance"].get("started") or started.isoformat())
            resumed = [*previous["provenance"].get("resumed", []), store.now().isoformat(timespec="seconds")]
        for earlier in (*_donors(module, profile, path), _intact(store.read_result(path), path), previous):
            if earlier is not None and earlier["config"] == config:
                done.update({(r["arm"], r["seed"]): r for r in earlier["runs"]})
    code = store.git_state()  # the code that runs is the code at the start
    trained: list[Unit] = []

    def pending() -> list[Unit]:
        return [unit for unit in units_of(module, config, seed_ids, done) if unit not in done]

    def keep(arm: str, seed: int, out: dict, wall: float, **how) -> None:
        bad = store.non_finite({"metrics": out["metrics"], "curves": out["curves"]})
        if bad:
            raise ValueError(f"{paper} unit ({arm!r}, seed {seed}) returned numbers a result cannot hold (NaN or inf) "
                             f"at {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}: its experiment must score a net "
                             f"whose training diverged explicitly. The units finished before it are kept in {partial}.")
        done[(arm, seed)] = store.normalise({"arm": arm, "seed": seed, "commit": code["commit"], "wall_seconds": wall,
                                             **how, **{k: out[k] for k in RUN_EXTRAS if k in out},
                                             "metrics": out["metrics"], "curves": out["curves"]})
        trained.append((arm, seed))

    def save_partial() -> None:  # an interrupted run keeps what it finished, and where it came from
        finished = list(done.values())
        store.write_json_atomic(partial, {
            "paper": paper, "profile": profile, "config": config, "seeds": seed_ids,
            "provenance": store.provenance(config["device"], started,
                                           sum(r["wall_seconds"] for r in finished), code, resumed, load_at_start),
            "runs": finished,
        })

    def train(arm: str, seeds: list[int]) -> None:
        tic = time.perf_counter()
        if len(seeds) == 1:
            seeding.seed_everything(seeds[0])
            keep(arm, seeds[0], module.run_one(config, arm, seeds[0], progress=progress),
                 round(time.perf_counter() - tic, 1))
        else:
            nets = []
            for seed in seeds:  # each member initialised as it would be alone
                seeding.seed_everything(seed)
                nets.append(module.build_net(config, arm))
            seeding.seed_everything(seeds[0])  # the stack's masks
            outs = module.run_stack(config, arm, seeds, nets, progress=progress)
            wall = round((time.perf_counter() - tic) / len(seeds), 1)  # the stack's time, shared by its members
            for seed, out in zip(seeds, outs, strict=True):
                keep(arm, seed, out, wall, stacked_with=seeds)
        save_partial()

    while todo := pending():  # more than one round only when later units depend on earlier runs
        if executor == "ray":  # the round's units in parallel, each kept and saved as it finishes
            for arm, seed, out, wall in scale.run_units(module, config, todo, threads=threads, address=address,
                                                        ship_data=ship_data, progress=progress):
                keep(arm, seed, out, wall, executor="ray")
                save_partial()
            continue
        groups: dict[str, list[int]] = {}
        for arm, seed in todo:
            groups.setdefault(arm, []).append(seed)
        batches = [(arm, seeds) for arm, seeds in groups.items()] if stack else [(arm, [seed]) for arm, seed in todo]
        for arm, seeds in progress_bar(batches, desc=f"{paper}/{profile} " + ("stacks" if stack else "runs"),
                                       unit="stack" if stack else "run", disable=not progress):
            train(arm, seeds)

    runs = [done[unit] for unit in units_of(module, config, seed_ids, done)]
    provenance = store.provenance(config["device"], started, sum(r["wall_seconds"] for r in runs), code, resumed,
                                  load_at_start)
    result = {
        "paper": paper,
        "profile": profile,
        "config": config,
        "seeds": seed_ids,
        "provenance": {**provenance, "runs_sha256": store.runs_digest(runs)},
        "runs": runs,
        "claims": store.normalise(module.claims(config, runs)),
        "paper_values": store.normalise(module.PAPER_VALUES),
    }
    store.write_json_atomic(path, result)
    partial.unlink(missing_ok=True)
    return store.StoredResult(result, path, written=True, trained=trained)


def _donors(module: ModuleType, profile: str, path: Path) -> list[dict]:
    """For a result stored apart (other config or seeds), the profile's own result: finished runs of the
    same config in it are reused. Read only; one that cannot be read is skipped, with a note."""
    own = store.result_path(module.PAPER, profile, path.parent.parent)
    if own == path:
        return []
    try:
        return [r] if (r := _intact(store.read_result(own), own)) is not None else []
    except store.ResultFileError as error:
        print(f"not reusing finished runs from {own}: {error}", file=sys.stderr)
        return []


def _intact(result: dict | None, path: Path) -> dict | None:
    """``result`` if its runs are those it was written with (their digest), else None, with a note: runs
    edited after training are never carried into a new result."""
    if result is not None and not store.runs_intact(result):
        print(f"not reusing finished runs from {path}: they are not those it was written with "
              f"(edited after training)", file=sys.stderr)
        return None
    return result


def reanalyse(paper: str, profile: str = "cpu", *, results_dir: Path | None = None) -> dict:
    """Recompute the claims (and refresh the paper values) of a stored result from its runs.

    Claims are analysis: a function of the runs and the config. When the analysis code
    changes, this brings a result file up to date without retraining; the runs, seeds,
    config and training provenance stay exactly as they were, and
    ``provenance["analysis"]`` records the commit whose code computed the claims. A result
    whose runs were changed after training is refused: only a rerun can mend it.
    """
    module = get(paper)
    path = store.result_path(paper, check_profile(profile), results_dir)
    missing = ResultUnavailableError(f"{path} does not exist, and reanalyse never trains: "
                                     f"run `make reproduce PAPER={paper} PROFILE={profile}` first")
    if not path.exists():  # checked before the lock, which would create the paper's folder
        raise missing
    with store.locked(path):
        result = store.read_result(path)
        if result is None:
            raise missing
        if not store.runs_intact(result):
            raise StaleResultError(f"{path}: its runs are not those it was written with; reanalysing would bless "
                                   f"them. Train it again with `python -m replib reproduce {paper} --profile {profile} --rerun`")
        result["claims"] = store.normalise(module.claims(result["config"], result["runs"]))
        result["paper_values"] = store.normalise(module.PAPER_VALUES)
        result["provenance"]["analysis"] = {**store.git_state(), "at": store.now().isoformat(timespec="seconds")}
        store.write_json_atomic(path, result)
    return store.StoredResult(result, path, written=True)
