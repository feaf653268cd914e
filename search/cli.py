"""`kerasweep sweep | status | export | train | ui`: parse arguments, call library functions, print. The team
service's commands (`service`, `submit`, `jobs`, `logs`, `cancel`) are in `search.cli_service`.

Exit codes: 0 success, 2 bad input (space file, flags, data, unknown sweep), 130 Ctrl-C, 143 SIGTERM,
1 anything else.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from kerasweep.search.cli_shared import console, err_console, reports_errors, store_option
from kerasweep.search.engines import ENGINES
from kerasweep.search.interrupts import stop_on_sigterm
from kerasweep.search.quiet import silence
from kerasweep.search.space import PRUNERS, SAMPLERS


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="kerasweep")
def main() -> None:
    """Hyperparameter sweeps for Keras models: one space file, every trial in MLflow."""
    stop_on_sigterm()  # a scheduler's or container's stop ends a sweep (or a server) as Ctrl-C does


@main.command()
@click.argument("space")
@click.option("--engine", type=click.Choice(list(ENGINES)), default="optuna", show_default=True, help="Search engine.")
@click.option("--trials", type=click.IntRange(min=1), help="Budget of complete + pruned trials (overrides the space).")
@click.option("--epochs", type=click.IntRange(min=1), help="Most epochs a trial may train (overrides the space).")
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True),
              help="Start no trial after this many minutes; running ones end as they would (overrides the space).")
@click.option("--name", help="Sweep name (default: the space's name). The same name resumes the sweep.")
@click.option("--workers", type=click.IntRange(min=1),
              help="Optuna engine: parallel trial processes, pinned to GPUs round robin (default 1 on CPU).")
@click.option("--trials-per-gpu", type=click.IntRange(min=1),
              help="Optuna engine: workers per visible GPU, each with its share of the GPU's memory (default 4 "
                   "where GPUs are seen).")
@click.option("--sampler", type=click.Choice(SAMPLERS),
              help="Sampler (overrides the space): tpe (default), random, cmaes, qmc, nsga2, grid on optuna and ray; "
                   "hyperband (default), random, bayesian on keras-tuner.")
@click.option("--pruner", type=click.Choice(PRUNERS), help="Pruner (overrides the space): hyperband (default on optuna), successive_halving "
                   "(ASHA, default on ray), median, none.")
@click.option("--seed", type=int, help="Seed for sampling, data split and weights (overrides the space).")
@store_option
@click.option("--storage", help="Optuna engine: storage URL (sqlite:///..., postgresql://...) or a *.journal file.")
@click.option("--max-failures", type=click.IntRange(min=0), default=0, show_default=True,
              help="Retry a failed trial up to N times with the same values, from its last saved epoch "
                   "(see --checkpoint-every).")
@click.option("--checkpoint-every", "checkpoint_every", type=click.FloatRange(min=0), metavar="SECONDS",
              help="Save a running trial's model at most this often (default 60; 0: every epoch); a crashed, "
                   "interrupted or failed trial's retry continues from it.")
@click.option("--cpus-per-trial", type=click.FloatRange(min=0), help="Ray engine: CPUs reserved per trial (default 1).")
@click.option("--gpus-per-trial", type=click.FloatRange(min=0),
              help="Ray engine: GPUs per trial (default 0); fractions pack trials on one GPU, >1 trains with "
                   "MirroredStrategy.")
@click.option("--address", help="Ray engine: join this Ray cluster (default: env RAY_ADDRESS, else a local Ray).")
@click.option("--warm-start", "warm_start_from", metavar="SWEEP",
              help="Start with the best trial of SWEEP (same store, any engine) as the first trial.")
@click.option("--enqueue", type=click.Path(path_type=Path), metavar="FILE",
              help="Run these values first: an exported config, or a YAML list of param sets.")
@click.option("--verbose", is_flag=True, help="Show TensorFlow, Optuna, Ray and MLflow logs.")
@click.option("--debug", is_flag=True, help="Run one trial eagerly (run_eagerly) with full logs, to debug a builder.")
@reports_errors
def sweep(space: str, engine: str, trials: int | None, epochs: int | None, minutes: float | None, name: str | None,
          workers: int | None, trials_per_gpu: int | None,
          sampler: str | None, pruner: str | None, seed: int | None, store: Path, storage: str | None,
          max_failures: int, checkpoint_every: float | None, cpus_per_trial: float | None,
          gpus_per_trial: float | None, address: str | None, warm_start_from: str | None, enqueue: Path | None,
          verbose: bool, debug: bool) -> None:
    """Run (or resume) a sweep of SPACE: a name under spaces/ or a path to a YAML file."""
    verbose = verbose or debug
    silence(verbose)
    from kerasweep.search.api import prepare, run
    from kerasweep.search.space import load_space

    parsed = load_space(space)
    config = prepare(parsed, name=name, store=store, engine=engine, trials=1 if debug else trials, epochs=epochs,
                     minutes=minutes, sampler=sampler, pruner=pruner, seed=seed, warm_start=warm_start_from,
                     enqueue=enqueue, workers=workers, trials_per_gpu=trials_per_gpu, storage=storage,
                     max_failures=max_failures, checkpoint_every_s=checkpoint_every, cpus_per_trial=cpus_per_trial,
                     gpus_per_trial=gpus_per_trial, address=address, verbose=verbose, debug=debug)
    asked = 1 if debug else trials or parsed.budget.trials
    if config.space.budget.trials < asked:  # a grid smaller than the budget: each config once
        console.print(f"The grid holds {config.space.budget.trials} configs: each runs once, the budget is "
                      f"{config.space.budget.trials} trials.")
    parsed = config.space

    # Keras and its backend load where trials train (this process, or each worker's: a parent of several
    # workers never imports them, and its workers' imports overlap instead of following its own)
    from kerasweep.search.export import export_best
    from kerasweep.search.progress import ConsoleReporter, counts_line, summary_table

    metric = parsed.objective.metric
    from kerasweep.search.engines import get_engine

    parallel = get_engine(engine).describe(config.options)
    console.print(
        f"Sweep [bold]{config.name}[/]: {parsed.model} on {parsed.data}, engine {engine}, "
        f"{parsed.budget.trials} trials x {parsed.budget.epochs} epochs, {parallel}, store {store}/"
    )
    report = config.report
    for line in report.lines if report else ():
        console.print(f"  {escape(line)}", highlight=False)
    if report and report.baseline:
        console.print(f"  baseline {metric} {report.baseline.value:.4f}: {escape(report.baseline.predictor)} "
                      "(what a trial must beat)", highlight=False)
    for line in report.warnings if report else ():
        err_console.print(f"[yellow]warning:[/] {escape(line)}", highlight=False)
    with ConsoleReporter(config.name, parsed.budget.trials, metric, console) as reporter:
        result = run(config, reporter)  # the stores were checked by prepare, before TensorFlow loaded
    console.print(counts_line(result))
    if parsed.budget.minutes and result.done < parsed.budget.trials:
        console.print(f"Time budget spent ({parsed.budget.minutes:g} min): no trial started after it; "
                      f"{result.done} of {parsed.budget.trials} trials done. Re-run to continue.")
    if result.best is None:
        console.print("No trial completed: nothing to export. Check failures with: kerasweep status " + config.name)
        return
    if parsed.multi_objective:
        from kerasweep.search.progress import pareto_table

        console.print(pareto_table(result, [o.metric for o in parsed.all_objectives], parsed.params))
        paths = export_best(config.name, store)
        console.print(f"Pareto front: {len(paths)} trial(s), one config each: {', '.join(map(str, paths))}")
        console.print(f"Next: [bold]make train CONFIG={paths[0]}[/] (or another), or `kerasweep export "
                      f"{config.name} --where \"latency_ms < 5\"` for the best one within a budget.")
        return
    console.print(summary_table(result, metric, parsed.params))
    path = export_best(config.name, store)[0]
    console.print(f"Best {metric} {result.best.value:.4f} (trial {result.best.number}){_against(report)}; "
                  f"config exported to {path}")
    if report and report.baseline and not report.baseline.beaten_by(result.best.value, result.direction):
        err_console.print(f"[bold red]No trial beats the trivial predictor[/] ({escape(report.baseline.predictor)}: "
                          f"{metric} {report.baseline.value:.4f}): this model has learnt nothing useful yet; see the "
                          f"warnings above, and docs/tasks.md \"{_section(parsed.task)}\"", highlight=False)
    console.print(f"Next: [bold]make ui[/] to browse the runs, [bold]make train CONFIG={path}[/] to train it.")


def _section(task: str) -> str:
    """The docs section that says how a task's data is read."""
    return "Forecasting" if task == "forecast" else "Tabular data"


def _against(report: Any) -> str:
    """', baseline 0.7200' beside a best value, or nothing where the sweep has no baseline."""
    if report is None or report.baseline is None:
        return ""
    return f", baseline {report.baseline.value:.4f}"


@main.command()
@click.argument("name", required=False)
@store_option
@reports_errors
def status(name: str | None, store: Path) -> None:
    """Sweeps in the store with counts per state and the best value (or one sweep, in detail); on a client of
    the team service (KERASWEEP_SERVICE set), the service's sweeps."""
    silence()
    from kerasweep.search.service.jobs import on_service, run_on_head

    if on_service(name, store):
        click.echo(run_on_head(["status", *([name] if name else [])], "status"), nl=False)
        return
    from rich.table import Table

    from kerasweep.search.api import sweeps
    from kerasweep.search.progress import summary_table

    results = sweeps(name, store)
    if not results:
        console.print(f"No sweeps in {store}/ yet. Start one with: make sweep SPACE=cnn")
        return
    table = Table(title=f"Sweeps in {store}/")
    for column in ("sweep", "engine", "budget", "complete", "pruned", "failed", "running", "best"):
        table.add_column(column, justify="left" if column in ("sweep", "engine") else "right",
                         no_wrap=column in ("sweep", "engine"))
    for config, result in results:
        c, best = result.counts, result.best
        table.add_row(config.name, result.engine, str(result.budget), str(c["complete"]), str(c["pruned"]),
                      str(c["failed"]), str(c["running"]),
                      f"{best.value:.4f} (#{best.number})" if best else "-")
    console.print(table)
    if name:
        config, result = results[0]
        if config.space.multi_objective:
            from kerasweep.search.progress import pareto_table

            console.print(pareto_table(result, [o.metric for o in config.space.all_objectives], config.space.params))
        else:
            console.print(summary_table(result, config.space.objective.metric, config.space.params))


@main.command()
@click.argument("name")
@click.option("--output", type=click.Path(path_type=Path), help="File to write (default <store>/exports/NAME.yaml).")
@click.option("--top", type=click.IntRange(min=1), default=1, show_default=True, help="Export the K best trials.")
@click.option("--where", multiple=True, metavar="CONSTRAINT",
              help='Only trials that meet it, e.g. "latency_ms < 5" or "model_params < 200000" (repeatable); a '
                   "model measure (model_params, model_bytes, latency_ms) or a metric training logs, at the best epoch.")
@click.option("--stdout", "to_stdout", is_flag=True, help="Print the config(s) instead of writing files.")
@store_option
@reports_errors
def export(name: str, output: Path | None, top: int, store: Path, where: tuple[str, ...], to_stdout: bool) -> None:
    """Write the best trial of sweep NAME as a config that `kerasweep train` takes as it is; on a client of the
    team service, the service's sweep, written here."""
    silence()
    from kerasweep.search.service.jobs import EXPORT_END, EXPORT_MARK, exports_in, on_service, run_on_head

    if on_service(name, store) and not to_stdout:
        where_args = [arg for constraint in where for arg in ("--where", constraint)]
        printed = run_on_head(["export", name, "--top", str(top), *where_args, "--stdout"], "export")
        folder = output.parent if output else store / "exports"
        for number, (filename, text) in enumerate(exports_in(printed)):
            path = output if output and number == 0 else folder / filename
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            console.print(f"Exported {path} (from the service)")
        return
    from kerasweep.search.api import export as export_best

    if to_stdout:
        import tempfile

        with tempfile.TemporaryDirectory() as scratch:
            for path in export_best(name, store, Path(scratch) / f"{name}.yaml", top, where):
                click.echo(f"{EXPORT_MARK}{path.name}\n{path.read_text().rstrip()}\n{EXPORT_END}")
        return
    for path in export_best(name, store, output, top, where):
        console.print(f"Exported {path}")


@main.command()
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs to train (default: the config's).")
@click.option("--output", type=click.Path(path_type=Path), help="Model file (default <store>/models/<config>.keras).")
@store_option
@click.option("--verbose", is_flag=True, help="Show Keras progress and TensorFlow logs.")
@reports_errors
def train(config: Path, epochs: int | None, output: Path | None, store: Path, verbose: bool) -> None:
    """Train an exported CONFIG with the sweep's own trainer; log, register and save the best model."""
    silence(verbose)
    from kerasweep.search.export import load_export

    spec = load_export(config)  # a bad file: one line before anything else
    from kerasweep.search.api import train as train_config

    console.print(f"Training {spec.model} on {spec.data} for up to {epochs or spec.epochs} epochs ...")
    result = train_config(config, store, epochs, output, verbose)
    console.print(f"Best {result.metric} {result.best_value:.4f} at epoch {result.best_epoch + 1}")
    console.print(f"Model saved to {result.model_path}")
    console.print(f"Registered in MLflow as models:/{result.registered_name}/{result.version} "
                  f"(run {result.mlflow_run_id}); browse it with: make ui")


port_option = functools.partial(click.option, "--port", type=click.IntRange(1, 65535), show_default=True)


@main.command()
@port_option(default=5000)
@store_option
@reports_errors
def ui(port: int, store: Path) -> None:
    """Serve the MLflow UI over the store's tracking data on 127.0.0.1."""
    from kerasweep.search.servers import serve, ui_command

    console.print(f"MLflow UI on http://127.0.0.1:{port} (tracking store in {store}/); Ctrl-C to stop.")
    sys.exit(serve(ui_command(store, port)))


@main.command()
@click.argument("name")
@port_option(default=6006)
@store_option
@reports_errors
def tensorboard(name: str, port: int, store: Path) -> None:
    """Serve TensorBoard over the per-trial logs of sweep NAME on 127.0.0.1."""
    from kerasweep.search.servers import inner_port, serve, tensorboard_command

    inner = inner_port()  # TensorBoard checks no Host header: search.host_guard answers on the port
    command = tensorboard_command(name, store, inner)
    console.print(f"TensorBoard on http://127.0.0.1:{port} ({command[2]}); Ctrl-C to stop.")
    sys.exit(serve(command, guarded=(port, inner)))


@main.command()
@click.argument("name")
@port_option(default=8080)
@store_option
@reports_errors
def dashboard(name: str, port: int, store: Path) -> None:
    """Serve optuna-dashboard over the Optuna storage of sweep NAME on 127.0.0.1."""
    from kerasweep.search.servers import dashboard_command, inner_port, serve

    inner = inner_port()  # optuna-dashboard checks no Host header: search.host_guard answers on the port
    command = dashboard_command(name, store, inner)
    console.print(f"optuna-dashboard on http://127.0.0.1:{port}; Ctrl-C to stop.")
    sys.exit(serve(command, guarded=(port, inner)))


from kerasweep.search.cli_service import cancel, list_jobs, logs, service, submit  # noqa: E402 - after main

for command in (service, submit, list_jobs, logs, cancel):
    main.add_command(command)

if __name__ == "__main__":
    main()
