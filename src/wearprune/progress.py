"""Progress bars for long verbs (epochs, batches, folds): rich on a terminal, nothing otherwise."""

from __future__ import annotations


class _NoBar:
    def epoch(self, record):
        pass

    def batch(self, done, total):
        pass


class _RichBar:
    def __init__(self, title: str, steps: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[info]}", markup=False), TimeElapsedColumn(),
                                 transient=False)
        self.title = title
        self.task = self.progress.add_task(title, total=steps, info="")
        self.batches = None

    def epoch(self, record: dict):
        info = " ".join(f"{k}={v:.4g}" for k, v in record.items() if k not in ("epoch", "lr"))
        self.progress.update(self.task, advance=1, info=info)

    def batch(self, done: int, total: int):
        if self.batches is None:
            self.batches = self.progress.add_task("  batches", total=total, info="")
        self.progress.update(self.batches, completed=done % total if done < total else total)
        if done >= total:
            self.progress.reset(self.batches, total=total)


class progress_bar:
    """``with progress_bar(enabled, title, steps) as bar``: ``bar.epoch(record)`` advances one step,
    ``bar.batch(done, total)`` drives a second bar inside it."""

    def __init__(self, enabled: bool, title: str, steps: int):
        self.bar = _RichBar(title, steps) if enabled else _NoBar()

    def __enter__(self):
        if isinstance(self.bar, _RichBar):
            self.bar.progress.start()
        return self.bar

    def __exit__(self, *exc):
        if isinstance(self.bar, _RichBar):
            bar = self.bar
            # Early stopping ends before the last epoch: show the bar as finished, not stuck.
            bar.progress.update(bar.task, completed=bar.progress.tasks[bar.task].total)
            if bar.batches is not None:
                bar.progress.remove_task(bar.batches)
            bar.progress.stop()
        return False
