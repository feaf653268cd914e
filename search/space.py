"""Load a space file, validate it, and answer which params are active for a set of values.

This is the only place that reads `spaces/*.yaml`. Everything downstream (engines, export, status)
works on the validated `Space`, so a bad file fails here, before any compute and before anything is
written to a store, with one line per problem:

    spaces/cnn.yaml: params.learning_rate.low: must be > 0 when log: true, got 0.0
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from kerasweep.search.errors import UserInputError
from kerasweep.search.safe_yaml import read_yaml
from kerasweep.trainers import catalog

Scalar = Union[StrictBool, StrictInt, FiniteFloat, StrictStr]
ColumnRole = Literal["numeric", "categorical", "date", "identifier", "ignore"]  # trainers.raw_columns.ROLES
TaskName = Literal["classification", "binary", "multilabel", "regression", "forecast"]  # catalog.TASKS' keys (a test keeps them in step)
MAX_PARAMS = 1000  # searched params per space; far beyond any model's, and suggesting stays quick
#: the words a space file may use; which engine runs which (and its default) is the engine's own (`SAMPLERS`)
SAMPLERS = ("tpe", "random", "cmaes", "qmc", "nsga2", "grid", "hyperband", "bayesian")
MAX_GRID = 100_000  # configs in a grid search; far beyond any budget of trials
PRUNERS = ("hyperband", "median", "successive_halving", "none")
PROJECT_SPACES = Path(__file__).resolve().parents[1] / "spaces"


CHECKED = "kerasweep.checked"  # validation context: the space's rules were checked already (see Space._semantics)


class SpaceProblems(UserInputError):
    """A space built in Python breaks the rules a space file must keep; one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(f"space: {line}" for line in problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ParamBase(_Strict):
    # `when: {optimizer: sgd}` or `when: {optimizer: [sgd, rmsprop]}`: the param exists only then.
    when: dict[str, Union[Scalar, list[Scalar]]] | None = None


class FloatParam(_ParamBase):
    type: Literal["float"]
    low: FiniteFloat
    high: FiniteFloat
    log: bool = False
    step: FiniteFloat | None = None
    default: FiniteFloat | None = None  # used by the first trial of a new sweep (a known-good start)


class IntParam(_ParamBase):
    type: Literal["int"]
    low: StrictInt
    high: StrictInt
    log: bool = False
    step: StrictInt | None = None
    default: StrictInt | None = None


class CategoricalParam(_ParamBase):
    type: Literal["categorical"]
    choices: list[Scalar]
    default: Scalar | None = None


Param = Annotated[Union[FloatParam, IntParam, CategoricalParam], Field(discriminator="type")]
PARAM_TYPES = {"float": FloatParam, "int": IntParam, "categorical": CategoricalParam}


class Objective(_Strict):
    metric: str = "val_accuracy"  # a Keras history key; validation metrics avoid overfitting the sweep
    direction: Literal["maximize", "minimize"] = "maximize"


class Budget(_Strict):
    trials: int = Field(20, ge=1)  # complete + pruned trials; failed ones do not eat the budget
    epochs: int = Field(10, ge=1)  # the most a trial may train, and the pruners' resource
    # stop starting trials after this many minutes of one run of the command (running ones end as they
    # would); None: no time limit. Whichever of `trials` and `minutes` comes first ends the run.
    minutes: FiniteFloat | None = Field(None, gt=0)
    # trainings per trial (KerasTuner's executions_per_trial): the trial's value is their mean
    repeats: int = Field(1, ge=1, le=10)


class FitArgs(_Strict):
    """Arguments of Keras `fit` a space may set: a closed list, the ones kerasweep does not set itself.
    Production training takes them from the export as the trials did."""

    # per class, by the name the data gives it (or "balanced": n / (classes x count)); classification, binary
    class_weight: Literal["balanced"] | dict[StrictStr | StrictInt, float] | None = None
    shuffle: StrictBool = True  # reshuffle the training examples every epoch


class ForecastSettings(_Strict):
    """`task: forecast`: which column orders the rows, how far ahead, and how gaps and validation go."""

    time: StrictStr  # the column of times (numbers or dates); rows sorted by it, one per time
    horizon: int = Field(1, ge=1, le=1000)  # steps ahead: one model answers steps 1..horizon
    covariates: list[StrictStr] | None = None  # columns read beside the targets; None: every other numeric one
    stride: int = Field(1, ge=1)  # rows between one window's end and the next one's
    sampling_rate: int = Field(1, ge=1)  # read every k-th row of the lookback
    missing: Literal["drop_windows", "interpolate"] = "drop_windows"  # a missing cell or time
    season: int | None = Field(None, ge=2)  # rows per season: the seasonal naive forecast is scored too
    # the first time that validates (as the column writes it); None: the last validation_split of the rows
    validation_from: StrictStr | StrictInt | FiniteFloat | dt.date | None = None


class SearchSettings(_Strict):
    # None: the engine's default (the first of its SAMPLERS)
    sampler: Literal["tpe", "random", "cmaes", "qmc", "nsga2", "grid", "hyperband", "bayesian"] | None = None
    # None: the engine's default (its DEFAULT_PRUNER)
    pruner: Literal["hyperband", "median", "successive_halving", "none"] | None = None
    seed: int = 0


class Space(_Strict):
    """A validated search space: what to train, what to search, how long, and how to judge it."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    model: str
    data: str
    # classification (default), binary, multilabel or regression: loss, head, metrics, split (catalog.TASKS)
    task: TaskName = "classification"
    target: StrictStr | list[StrictStr] = "label"  # the CSV column(s) holding the labels or targets
    validation: StrictStr | None = None  # a file of the same kind used as the validation part (no split)
    validation_split: FiniteFloat = Field(0.2, gt=0.0, lt=1.0)
    # which rows validate: random (stratified for classes) or ordered (the last ones, in the file's order:
    # windows or rows of one series); a forecast always splits in time
    split: Literal["random", "ordered"] = "random"
    objective: Objective = Objective()  # the first (or only) objective: it picks the best epoch and prunes
    # every objective when `objective:` is a list (a multi-objective sweep); empty with one objective
    objectives: tuple[Objective, ...] = ()
    budget: Budget = Budget()
    search: SearchSettings = SearchSettings()
    # a define-by-run builder (of `trial` or `hp`) declares its own; here, fixed values or narrower ranges
    params: dict[str, Param] = Field(default_factory=dict, max_length=MAX_PARAMS)
    fixed: dict[str, Any] = {}
    fit: FitArgs = FitArgs()
    callbacks: StrictStr | None = None  # package.module:function returning a list of Keras callbacks, per trial
    # a table's column roles, where the inferred ones are wrong: {year: categorical, customer_id: ignore}
    columns: dict[StrictStr, ColumnRole] = {}
    forecast: ForecastSettings | None = None  # task forecast only
    source: str = ""  # the file it was loaded from; set by load_space, for messages and provenance
    code: str = ""  # the folder its `module:function` imports from; set by load_space (trainers.user_code)

    @model_validator(mode="before")
    @classmethod
    def _task_objective(cls, data: Any) -> Any:
        """A space that names no objective gets its task's (val_mae, minimize for regression)."""
        if isinstance(data, dict) and "objective" not in data and data.get("task") in catalog.TASKS:
            metric, direction = catalog.TASKS[data["task"]].objective
            return {**data, "objective": {"metric": metric, "direction": direction}}
        if isinstance(data, dict) and isinstance(data.get("objective"), list) and data["objective"]:
            # several objectives: the first drives training (best epoch, pruning); all rank the trials
            return {**data, "objective": data["objective"][0], "objectives": data["objective"]}
        return data

    @model_validator(mode="after")
    def _semantics(self, info: ValidationInfo) -> Space:
        """Every rule `load_space` applies holds for a space built in Python too (a dict, `Space(...)`): a
        misspelt param would otherwise be sampled, logged and exported while nothing reads it. A space that
        was checked already (re-read from a sweep's record, overridden from the CLI) is not checked again."""
        if not (info.context or {}).get(CHECKED):
            base = Path(self.source).parent if self.source else None
            problems = check_space(self, base_dir=base, files=False)
            if problems:
                raise SpaceProblems(problems)
        return self

    @property
    def all_objectives(self) -> tuple[Objective, ...]:
        """Every objective, the first first."""
        return self.objectives or (self.objective,)

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def targets(self) -> str | tuple[str, ...]:
        """`target` as the data loader takes it (hashable: a name or a tuple of names)."""
        return self.target if isinstance(self.target, str) else tuple(self.target)

    def is_active(self, name: str, values: dict[str, Any]) -> bool:
        """True when every `when:` condition of param `name` holds for the values sampled so far."""
        when = self.params[name].when or {}
        for parent, wanted in when.items():
            allowed = wanted if isinstance(wanted, list) else [wanted]
            if parent not in values or values[parent] not in allowed:
                return False
        return True

    def grid(self) -> dict[str, list[Any]]:
        """Every value of every param for a grid search: the choices; a range from low to high by its step
        (an int range without a step by 1). A float range without a step has no grid (see grid_problems)."""
        found: dict[str, list[Any]] = {}
        for name, param in self.params.items():
            if isinstance(param, CategoricalParam):
                found[name] = list(param.choices)
            elif isinstance(param, IntParam) or param.step:
                step = param.step or 1
                count = round((param.high - param.low) / step) + 1
                found[name] = [param.low + i * step for i in range(count) if param.low + i * step <= param.high + 1e-12]
        return found

    def grid_problems(self) -> list[str]:
        """Why this space cannot be searched on a grid, one line per param."""
        problems = [f"params.{name}: sampler grid needs a step for a float range (or type: categorical); got low "
                    f"{p.low}, high {p.high} and no step" for name, p in self.params.items()
                    if isinstance(p, FloatParam) and not p.step]
        if not self.params:
            problems.append("search.sampler: a grid needs the space's params (a define-by-run builder declares its own)")
        size = self.grid_size()
        if not problems and size > MAX_GRID:
            problems.append(f"search.sampler: the grid holds {size} configs, more than {MAX_GRID}; widen the steps "
                            "or use tpe or random")
        return problems

    def grid_size(self) -> int:
        """How many configs the grid holds (every combination; conditionals not pruned)."""
        size = 1
        for values in self.grid().values():
            size *= len(values)
        return size

    def first_values(self) -> dict[str, Any]:
        """One complete set of active values: each param's default, else its first choice or its low end
        (what a check builds the model with before any trial)."""
        values: dict[str, Any] = {}
        for name, param in self.params.items():
            if self.is_active(name, values):
                first = param.choices[0] if isinstance(param, CategoricalParam) else param.low
                values[name] = param.default if param.default is not None else first
        return values

    def default_values(self) -> dict[str, Any]:
        """The declared defaults of the active params: the first trial of a new sweep."""
        values: dict[str, Any] = {}
        for name, param in self.params.items():
            if param.default is not None and self.is_active(name, values):
                values[name] = param.default
        return values

    def with_overrides(self, **overrides: Any) -> Space:
        """A copy with CLI overrides applied (`trials`, `epochs`, `sampler`, `pruner`, `seed`); None keeps."""
        data = self.model_dump()
        for key, value in overrides.items():
            if value is None:
                continue
            section = "budget" if key in ("trials", "epochs", "minutes") else "search"
            data[section][key] = value
        return Space.model_validate(data, context={CHECKED: True})


def resolve_space_path(space: str | os.PathLike[str]) -> Path:
    """Find a space file: a path as given, else `<name>.yaml` in ./spaces or the project's spaces/."""
    given = Path(space)
    if given.suffix in (".yaml", ".yml") or given.exists() or len(given.parts) > 1:
        if not given.is_file():
            raise UserInputError(f"{given}: space file not found; pass a path to a YAML file or a name under spaces/")
        return given
    for folder in (Path("spaces"), PROJECT_SPACES):
        candidate = folder / f"{given}.yaml"
        if candidate.is_file():
            return candidate
    names = sorted({p.stem for folder in (Path("spaces"), PROJECT_SPACES) if folder.is_dir() for p in folder.glob("*.yaml")})
    raise UserInputError(f"space '{space}' not found under spaces/; available: {', '.join(names) or 'none'}")


def load_space(space: str | os.PathLike[str]) -> Space:
    """Read and validate a space file (by name or path); raise UserInputError listing every problem."""
    path = resolve_space_path(space)
    raw = read_yaml(path)  # with limits on size and alias expansion (search.safe_yaml)
    if not isinstance(raw, dict):
        raise UserInputError(f"{path}: expected a mapping with keys {', '.join(_fields(Space))}, got {type(raw).__name__}")
    for key in _SET_BY_LOADING:
        if key in raw:
            raise UserInputError(f"{path}: {key}: unknown key; valid keys: {', '.join(_fields(Space))}")
    family_problems, raw = expand_families(raw)
    if family_problems:
        raise UserInputError("\n".join(f"{path}: {line}" for line in family_problems))
    try:
        parsed = Space.model_validate({**raw, "source": str(path)}, context={CHECKED: True})
    except ValidationError as exc:
        raise UserInputError("\n".join(f"{path}: {line}" for line in describe_errors(exc))) from None
    problems = check_space(parsed, base_dir=path.parent)
    if problems:
        raise UserInputError("\n".join(f"{path}: {line}" for line in problems))
    from kerasweep.trainers.user_code import code_folder

    return parsed.model_copy(update={"code": code_folder(parsed.model, parsed.data, parsed.callbacks or "") or ""})


def resolve_data_path(data: str, base_dir: Path | None = None) -> Path | None:
    """A user data path as it exists (as given, or relative to the space file); None for bundled names
    and data functions (`package.module:function`)."""
    if data in catalog.BUNDLED_DATASETS or catalog.is_data_function(data):
        return None
    for candidate in (Path(data), (base_dir or Path(".")) / data):
        if candidate.exists():
            return candidate.resolve()
    return Path(data)


def check_space(space: Space, base_dir: Path | None = None, files: bool = True) -> list[str]:
    """Rules across fields that a schema cannot say; one message per problem, in file order. `files=False`
    leaves out whether the data files exist (a space built in Python may name them relative to elsewhere)."""
    problems: list[str] = []
    style = "values"
    if catalog.is_user_builder(space.model):
        builder_problems, style = _check_user_builder(space.model)
        problems += builder_problems
    elif space.model not in catalog.MODEL_PARAMS:
        problems.append(f"model: unknown model {space.model!r}; expected one of {', '.join(catalog.MODEL_PARAMS)} "
                        "or a builder 'package.module:function'")
    if not space.params and style == "values":
        problems.append("params: declare at least one param to search (or use a builder of `trial` or `hp`, "
                        "which declares its own)")
    problems += _check_data(space.data, base_dir) if files else []
    problems += _check_fit(space)
    for where, values in (("params", space.params), ("fixed", space.fixed)):
        if "loss" in values and space.task not in ("regression", "forecast"):
            problems.append(f"{where}.loss: applies to regression ({', '.join(catalog.REGRESSION_LOSSES)}); task "
                            f"{space.task} trains with {catalog.TASKS[space.task].loss}; remove loss")
    problems += _check_acting(space)
    problems += _check_forecast(space)
    if space.validation is not None and files:
        problems += [line.replace("data:", "validation:", 1) for line in _check_data(space.validation, base_dir)]
    logged = catalog.task_metrics(space.task)
    if space.objective.metric not in logged:
        # a shortened name (val_acc) means the metric it begins; else the closest spelling
        hint = [m for m in logged if m.startswith(space.objective.metric)][:1] or \
            difflib.get_close_matches(space.objective.metric, logged, n=1)
        where = "objective[0].metric" if space.objectives else "objective.metric"
        first = " (the first objective picks each trial's best epoch: a metric training logs)" \
            if space.objective.metric in catalog.MEASURES else ""
        problems.append(
            f"{where}: task {space.task} does not log {space.objective.metric!r}; expected one of "
            f"{', '.join(logged)}" + (f" (did you mean {hint[0]!r}?)" if hint else "") + first
        )
    for index, objective in enumerate(space.objectives[1:], start=1):
        if objective.metric not in (*logged, *catalog.MEASURES):
            problems.append(f"objective[{index}].metric: task {space.task} does not log {objective.metric!r}; "
                            f"expected one of {', '.join((*logged, *catalog.MEASURES))}")
    metrics = [objective.metric for objective in space.objectives]
    if len(set(metrics)) < len(metrics):
        problems.append(f"objective: each metric once, got {metrics}")
    known = catalog.known_params(space.model) if space.model in catalog.MODEL_PARAMS else None  # users': unknown
    declared: list[str] = []
    for name, param in space.params.items():
        problems += [f"params.{name}.{line}" for line in _check_param(param)]
        problems += _check_when(name, param, space, declared)
        problems += _check_name(f"params.{name}", name, known)
        reported = {problem.split(":")[0] for problem in problems}  # one line per field: the first rule it breaks
        problems += [p for p in _check_param_values(f"params.{name}", name, param, space.model)
                     if p.split(":")[0] not in reported]
        declared.append(name)
    for name, value in space.fixed.items():
        problems += _check_name(f"fixed.{name}", name, known)
        if name in space.params:
            problems.append(f"fixed.{name}: also declared under params; keep it in one place")
        problems += check_value(f"fixed.{name}", name, value, space.model)
    return problems


def _check_user_builder(model: str) -> tuple[list[str], str]:
    """Import a user's builder (this runs the user's module, as docs/spaces.md says) to fail before compute;
    returns the problems and the builder's style ("values", "trial" or "hp")."""
    from kerasweep.search.quiet import import_keras_quietly

    import_keras_quietly()
    from kerasweep.trainers.models import resolve_builder
    from kerasweep.trainers.suggest import builder_style

    try:
        return [], builder_style(resolve_builder(model))
    except KeyError as exc:
        return [f"model: {exc.args[0]}; expected an importable 'package.module:function'"], "unknown"
    except ValueError as exc:
        return [f"model: {exc}"], "unknown"


FAMILY = "{i}"  # in a param's name: one param per layer, numbered (units_{i}: units_1, units_2, ...)


def expand_families(raw: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """A space file's params with each family written out: `units_{i}: {..., per: layers, start: 2}`
    becomes `units_2` ... `units_<layers' high>`, each existing (a `when:` on `layers`) for the values of
    `layers` that have that layer. Returns the problems (one per field) and the expanded document."""
    params = raw.get("params")
    if not isinstance(params, dict) or not any(FAMILY in str(name) for name in params):
        return [], raw
    problems: list[str] = []
    expanded: dict[str, Any] = {}
    for name, param in params.items():
        if FAMILY not in str(name):
            expanded[name] = param
            continue
        where = f"params.{name}"
        if not isinstance(param, dict) or "per" not in param:
            problems.append(f"{where}: a name with {FAMILY} is a family, one param per layer; add per: <an int param "
                            "declared before it, such as layers>")
            continue
        parent, start = param["per"], param.get("start", 1)
        counts = expanded.get(parent)
        if not (isinstance(counts, dict) and counts.get("type") == "int" and isinstance(counts.get("low"), int)
                and isinstance(counts.get("high"), int)):
            problems.append(f"{where}.per: {parent!r} must be an int param declared before {name!r}")
            continue
        if not isinstance(start, int) or isinstance(start, bool) or start < 0:
            problems.append(f"{where}.start: the first layer's number, a whole number >= 0, got {start!r}")
            continue
        if "when" in param:
            problems.append(f"{where}.when: a family's members exist for the values of {parent!r} that have their "
                            "layer; remove when")
            continue
        values = list(range(counts["low"], counts["high"] + 1, counts.get("step") or 1))
        member = {k: v for k, v in param.items() if k not in ("per", "start")}
        for number in range(start, counts["high"] + 1):
            having = [v for v in values if v >= number]  # the layer exists for these counts of layers
            if having:
                expanded[name.replace(FAMILY, str(number))] = member if having == values else {**member,
                                                                                               "when": {parent: having}}
    return problems, {**raw, "params": expanded}


def _check_forecast(space: Space) -> list[str]:
    """`forecast:` and `lookback` act under task forecast only, and task forecast needs them."""
    if space.task == "forecast":
        if space.forecast is None:
            return ["forecast: task forecast needs forecast: {time: <column of times>, horizon: <steps ahead>}"]
        if space.forecast.time in ([space.target] if isinstance(space.target, str) else space.target):
            return [f"forecast.time: {space.forecast.time!r} is also the target; name the column of times"]
        return [] if space.split == "random" else ["split: a forecast always validates on the last part of the series "
                                                   "(forecast.validation_from moves its start); remove split"]
    if space.split == "ordered" and space.validation is not None:
        return ["split: ordered chooses validation rows, and validation: names a file of them; remove one"]
    problems = [f"{where}.lookback: applies to task forecast (the window length); task {space.task} reads no "
                "windows; remove lookback" for where, values in (("params", space.params), ("fixed", space.fixed))
                if "lookback" in values]
    if space.forecast is not None:
        problems.append(f"forecast: applies to task forecast; task {space.task} reads it nowhere; set task: forecast "
                        "or remove forecast")
    return problems


def _check_acting(space: Space) -> list[str]:
    """A searched param whose parent can take a value it does not act for (momentum while optimizer can be
    adam, units_3 while layers can be 2) would be sampled and logged without effect: it needs a `when:`
    on that parent. A fixed one is refused only where it can never act."""
    if space.model not in catalog.MODEL_PARAMS:  # a user's builder may compile with its own momentum, ...:
        return []  # what it reads is checked when it builds (trainers.fit: check_all_read, check_own_compile)
    rules = {**catalog.ACTS_ONLY_WHEN["*"], **catalog.ACTS_ONLY_WHEN.get(space.model, {})}
    problems = []
    for name in (*space.params, *space.fixed):
        rule = rules.get(name)
        if rule is None or (name in space.fixed and name in space.params):
            continue
        searched = name in space.params
        where = f"params.{name}" if searched else f"fixed.{name}"
        domain, whence = _parent_values(space, rule)
        if searched and space.params[name].when and rule.parent in space.params[name].when:
            wanted = space.params[name].when[rule.parent]
            domain = [v for v in domain if v in (wanted if isinstance(wanted, list) else [wanted])]
        acting = [v for v in domain if rule.acts(v)]
        idle = [v for v in domain if not rule.acts(v)]
        if not idle:
            continue  # acts for every value its parent can take (or the when: names none: reported elsewhere)
        if searched and idle and acting:
            problems.append(f"{where}: acts only when {rule.parent} is {rule.describe()}, but {rule.parent} can be "
                            f"{idle[0]!r}; add when: {{{rule.parent}: {acting}}}")
        elif not acting:
            problems.append(f"{where}: acts only when {rule.parent} is {rule.describe()}, but {rule.parent} is "
                            f"{idle[0]!r}{whence}, so it would be logged without effect; search or fix {rule.parent} "
                            f"to such a value, or remove {name}")
    return problems


def _parent_values(space: Space, rule: catalog.ActsWhen) -> tuple[list[Any], str]:
    """The values `rule.parent` can take in this space, and how it got them (for the message)."""
    parent = space.params.get(rule.parent)
    if isinstance(parent, CategoricalParam):
        return list(parent.choices), ""
    if isinstance(parent, IntParam):
        return list(range(parent.low, parent.high + 1, parent.step or 1)), ""
    if rule.parent in space.fixed:
        return [space.fixed[rule.parent]], " (fixed)"
    return [rule.default], " (its default)"


def _check_fit(space: Space) -> list[str]:
    """`fit:` and `callbacks:` rules that need the task; class names are checked with the data."""
    problems = []
    weights = space.fit.class_weight
    if weights is not None and space.task not in ("classification", "binary"):
        problems.append(f"fit.class_weight: task {space.task} has no classes to weight; remove it (Keras weighs "
                        "classes of single-label tasks only)")
    if isinstance(weights, dict) and any(not (w > 0 and w < float("inf")) for w in weights.values()):
        problems.append(f"fit.class_weight: weights must be finite numbers > 0, got {weights}")
    if space.callbacks is not None and not catalog.DATA_FUNCTION.fullmatch(space.callbacks):
        problems.append(f"callbacks: {space.callbacks!r} is not a function name; expected 'package.module:function' "
                        "returning a list of Keras callbacks")
    return problems


def _check_data(data: str, base_dir: Path | None) -> list[str]:
    path = resolve_data_path(data, base_dir)
    if path is None:
        return []
    if not path.exists():
        return [
            f"data: {data!r} is neither a bundled dataset ({', '.join(catalog.BUNDLED_DATASETS)}) "
            "nor an existing file or folder"
        ]
    if path.is_file() and path.suffix not in catalog.DATA_FILE_SUFFIXES:
        return [f"data: {data!r} has suffix {path.suffix!r}; expected {' or '.join(catalog.DATA_FILE_SUFFIXES)} or a folder of images per class"]
    return []


def _check_param(param: FloatParam | IntParam | CategoricalParam) -> list[str]:
    if isinstance(param, CategoricalParam):
        if not param.choices:
            return ["choices: must list at least one value, got []"]
        if len(set(map(repr, param.choices))) != len(param.choices):
            return [f"choices: values must be unique, got {param.choices}"]
        if param.default is not None and param.default not in param.choices:
            return [f"default: must be one of the choices {param.choices}, got {param.default!r}"]
        return []
    problems = []
    if param.low >= param.high:
        problems.append(f"low: low < high must hold, got low={param.low}, high={param.high}")
    if param.log and param.low <= 0:
        problems.append(f"low: must be > 0 when log: true, got {param.low}")
    if param.step is not None and param.step <= 0:
        problems.append(f"step: must be > 0, got {param.step}")
    if param.step is not None and param.log:
        problems.append("step: cannot be combined with log: true; drop one of them")
    if param.default is not None and not param.low <= param.default <= param.high:
        problems.append(f"default: must lie in [low, high] = [{param.low}, {param.high}], got {param.default}")
    return problems


def _check_when(name: str, param: Any, space: Space, declared: list[str]) -> list[str]:
    problems = []
    for parent, wanted in (param.when or {}).items():
        where = f"params.{name}.when.{parent}"
        if parent not in space.params:
            problems.append(f"{where}: names no declared param; expected one of {', '.join(declared) or '(none declared before it)'}")
            continue
        if parent not in declared:
            problems.append(f"{where}: {parent!r} must be declared before {name!r} (parents come before children)")
            continue
        parent_param = space.params[parent]
        if isinstance(parent_param, FloatParam):
            problems.append(f"{where}: a condition needs a categorical or int parent (a float seldom takes an exact "
                            f"value), but {parent!r} is float")
            continue
        for value in wanted if isinstance(wanted, list) else [wanted]:
            if isinstance(parent_param, CategoricalParam) and value not in parent_param.choices:
                problems.append(f"{where}: {parent!r} cannot take {value!r}; its choices are {parent_param.choices}")
            elif isinstance(parent_param, IntParam) and not _int_can_take(parent_param, value):
                problems.append(f"{where}: {parent!r} cannot take {value!r}; it takes whole numbers from "
                                f"{parent_param.low} to {parent_param.high}" +
                                (f" in steps of {parent_param.step}" if parent_param.step else ""))
    return problems


def _int_can_take(param: IntParam, value: Any) -> bool:
    """Whether an int param can be sampled as `value` (a `when:` on it can hold)."""
    if not isinstance(value, int) or isinstance(value, bool) or not param.low <= value <= param.high:
        return False
    return param.log or (value - param.low) % (param.step or 1) == 0


def _check_name(where: str, name: str, known: dict[str, str] | None) -> list[str]:
    if known is None or name in known:
        return []
    hint = difflib.get_close_matches(name, known, n=1)
    suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
    return [f"{where}: unknown param {name!r}{suggestion}; the model reads {', '.join(sorted(known))}"]


def value_rule(name: str, model: str) -> catalog.ValueRule | None:
    """The rule for param `name` of `model`: every param of a shipped model, and the training loop's
    params (batch size, optimizer, ...) of a user's builder too; None where only the builder knows."""
    if catalog.is_user_builder(model) and name not in catalog.TRAINING_PARAMS:
        return None
    return catalog.MODEL_VALUE_RULES.get(model, {}).get(name) or catalog.VALUE_RULES.get(name)


def check_value(where: str, name: str, value: Any, model: str) -> list[str]:
    """A fixed or exported value against the type and range the code that reads `name` expects."""
    rule = value_rule(name, model)
    problem = rule.problem(name, value) if rule else None
    return [f"{where}: {problem}"] if problem else []


def _check_param_values(where: str, name: str, param: Any, model: str) -> list[str]:
    """Every value a searched param can take must be one its reader accepts (type, then range)."""
    rule = value_rule(name, model)
    if rule is None:
        return []
    if isinstance(param, CategoricalParam):
        return [f"{where}.choices: {problem}" for value in param.choices if (problem := rule.problem(name, value))]
    if rule.kind in ("bool", "name", "path"):
        takes = "true or false" if rule.kind == "bool" else "names"
        return [f"{where}.type: {name} takes {takes}, not a {param.type} range; use type: categorical"]
    if rule.kind == "int" and isinstance(param, FloatParam):
        return [f"{where}.type: {name} is a whole number; use type: int"]
    problems = []
    for field in ("low", "high", "default"):
        value = getattr(param, field)
        if value is not None and (problem := rule.problem(name, value)):
            problems.append(f"{where}.{field}: {problem}")
    return problems


_SCALAR_TAGS = {"bool", "int", "float", "str"}  # pydantic's names for the members of `Scalar`
_SECTIONS: dict[str, type[BaseModel]] = {"objective": Objective, "budget": Budget, "search": SearchSettings,
                                        "fit": FitArgs}


_SET_BY_LOADING = ("source", "code")  # Space fields a file may not set


def _fields(model: type[BaseModel]) -> list[str]:
    return [name for name in model.model_fields if name not in _SET_BY_LOADING]


def describe_errors(exc: ValidationError, root: type[BaseModel] | None = None,
                    sections: dict[str, type[BaseModel]] | None = None) -> list[str]:
    """Turn pydantic's errors into `field.path: what is wrong, got X` lines (a space file's by default;
    `root` and its `sections` for another file, such as an export)."""
    root, sections = root or Space, _SECTIONS if sections is None else sections
    lines: list[str] = []
    for err in exc.errors():
        loc = [str(part) for part in err["loc"]]
        owner: type[BaseModel] = root
        if root is Space and loc[:1] == ["params"] and len(loc) >= 3 and loc[2] in PARAM_TYPES:
            owner = PARAM_TYPES[loc.pop(2)]
        elif loc[:1] and loc[0] in sections:
            owner = sections[loc[0]]
        if loc and loc[-1] in _SCALAR_TAGS:  # one value failed every member of the Scalar union: one line
            line = f"{'.'.join(loc[:-1])}: expected true/false, a whole number, a finite number or text, got {err.get('input')!r}"
            if line not in lines:
                lines.append(line)
            continue
        path = ".".join(loc)
        kind, got = err["type"], err.get("input")
        if kind == "extra_forbidden":
            lines.append(f"{path}: unknown key; valid keys: {', '.join(_fields(owner))}")
        elif kind == "missing":
            lines.append(f"{path}: missing required field")
        elif kind == "union_tag_invalid":
            lines.append(f"{path}.type: expected one of {', '.join(PARAM_TYPES)}, got {got.get('type')!r}")
        elif kind == "union_tag_not_found":
            lines.append(f"{path}.type: missing; expected one of {', '.join(PARAM_TYPES)}")
        elif kind == "model_type" or kind == "dict_type":
            lines.append(f"{path}: expected a mapping, got {got!r}")
        else:
            lines.append(f"{path}: {err['msg'].removeprefix('Value error, ')}, got {got!r}")
    return lines
