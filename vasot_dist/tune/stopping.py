"""Early stopping that ends a trial's Ray Train run cleanly.

When a scheduler (ASHA) stops a trial, Ray Tune kills the trial's driver actor, and with it the Train
controller, mid-run. Ray Train then relies on its PlacementGroupCleaner, which needs the dashboard's state
API (``ray[default]``), to free the workers' placement group; without it the resources stay reserved and
later trials wait forever. So here a scheduler's STOP becomes a *request*: :class:`GracefulStop` records it
in a :class:`StopRegistry` actor and lets the trial continue; the workers poll the registry every
``train.log_every`` steps (:class:`StopCheck`, all ranks agree through one broadcast) and leave the loop
together, so ``TorchTrainer.fit()`` returns normally, the worker group is shut down and Tune marks the trial
TERMINATED.
"""

from __future__ import annotations

from typing import Any

from ray.tune.schedulers import TrialScheduler


class StopRequested(Exception):
    """Raised on every rank of a trial the scheduler stopped; the worker function catches it."""

    def __init__(self, step: int) -> None:
        super().__init__(f"stopped by the scheduler at step {step}")
        self.step = step


class StopRegistry:
    """Trial ids whose stop was requested (a Ray actor: ``ray.remote(StopRegistry)``)."""

    def __init__(self) -> None:
        self._ids: set[str] = set()

    def request(self, trial_id: str) -> None:
        self._ids.add(trial_id)

    def requested(self, trial_id: str) -> bool:
        return trial_id in self._ids


def start_registry(name: str):
    """The named registry actor of a sweep (created by the sweep's driver process, or found). Keep the
    returned handle: the actor is not detached and ends with the last handle."""
    import ray

    return ray.remote(num_cpus=0)(StopRegistry).options(name=name, get_if_exists=True).remote()


def find_registry(name: str):
    """The registry actor ``name``, or None when it does not exist."""
    import ray

    try:
        return ray.get_actor(name)
    except ValueError:
        return None


class GracefulStop(TrialScheduler):
    """Wraps a scheduler; its STOP decisions go to the registry ``registry_name`` and Tune sees CONTINUE.
    Everything else is the wrapped scheduler's."""

    def __init__(self, inner: TrialScheduler, registry_name: str) -> None:
        super().__init__()
        self.inner = inner
        self.registry_name = registry_name

    @property
    def metric(self):
        return self.inner.metric

    @property
    def supports_buffered_results(self) -> bool:
        return self.inner.supports_buffered_results

    def set_search_properties(self, metric, mode, **spec) -> bool:
        return self.inner.set_search_properties(metric, mode, **spec)

    def on_trial_add(self, tune_controller, trial) -> None:
        self.inner.on_trial_add(tune_controller, trial)

    def on_trial_error(self, tune_controller, trial) -> None:
        self.inner.on_trial_error(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result: dict[str, Any]) -> str:
        decision = self.inner.on_trial_result(tune_controller, trial, result)
        if decision != TrialScheduler.STOP:
            return decision
        import ray

        registry = find_registry(self.registry_name)
        if registry is None:  # cannot ask the workers: fall back to Tune's own stop
            return decision
        ray.get(registry.request.remote(trial.trial_id))
        return TrialScheduler.CONTINUE

    def on_trial_complete(self, tune_controller, trial, result) -> None:
        self.inner.on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial) -> None:
        self.inner.on_trial_remove(tune_controller, trial)

    def choose_trial_to_run(self, tune_controller):
        return self.inner.choose_trial_to_run(tune_controller)

    def debug_string(self) -> str:
        return f"{self.inner.debug_string()} (stops through the workers)"

    def save(self, checkpoint_path: str) -> None:
        self.inner.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.inner.restore(checkpoint_path)


class StopCheck:
    """The loop's ``on_step`` hook on every rank: every ``every`` steps rank 0 asks the registry whether this
    trial was stopped, broadcasts the answer, and all ranks raise :class:`StopRequested` together."""

    def __init__(self, registry_name: str, trial_id: str, rank: int, every: int) -> None:
        self.registry_name = registry_name
        self.trial_id = trial_id
        self.rank = rank
        self.every = max(1, every)
        self._registry = None

    def _requested(self) -> bool:
        import ray

        if self._registry is None:
            self._registry = find_registry(self.registry_name)
        if self._registry is None:
            return False
        try:
            return bool(ray.get(self._registry.requested.remote(self.trial_id)))
        except ray.exceptions.RayActorError:  # the sweep's driver is gone: nobody can stop us any more
            self._registry = None
            return False

    def __call__(self, step: int, model: Any = None, out: Any = None) -> None:
        if step % self.every:
            return
        import torch.distributed as dist

        flag = self._requested() if self.rank == 0 else False
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            box = [flag]
            dist.broadcast_object_list(box, src=0)
            flag = box[0]
        if flag:
            raise StopRequested(step)
