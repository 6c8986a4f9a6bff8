"""tf.distribute for the Keras training loop: --distribute mirrored | multi-worker (TensorFlow backend).

- mirrored: MirroredStrategy over this machine's GPUs (see .device.replica_devices); multi-worker:
  MultiWorkerMirroredStrategy over the machines listed in TF_CONFIG. The model, the optimizers and
  all their variables are created under strategy.scope(), so each replica holds a mirrored copy.
- --batch-size is the GLOBAL batch: tf.data splits each global batch into one piece per replica
  (experimental_distribute_dataset; as evenly as it goes, a short last batch included; a replica
  left with no image contributes zero gradients and skips its forward pass).
- Each replica's loss is sum(per-example loss) / (examples in the global batch), so the SUM of the
  replicas' gradients is the gradient of the global mean: after one all-reduce (SUM) every replica
  holds the gradient a single device computes on the whole batch. Clipping, the coupled L2 term and
  the fp16 overflow check act on these all-reduced gradients, identically on every replica, so an
  overflowing step is skipped everywhere. Loss and correct predictions are reduced with SUM.

Keras 3 and that all-reduce (read in keras/src/backend/tensorflow/optimizer.py, Keras 3.15):
TFOptimizer._backend_update_step passes the gradients through self._all_reduce_sum_gradients, which
all-reduces them (SUM) whenever it runs inside a replica context; Keras' own train_step relies on
this and hands it per-replica gradients. Keras' clipnorm / global_clipnorm run before that, on each
replica's local gradients, which is not the global-norm clipping this loop does. So the step here
all-reduces once itself and uses optimizer subclasses whose _all_reduce_sum_gradients passes the
gradients through (summing already-reduced gradients would multiply them by the replica count).
The update itself still goes through Keras' merge_call / extended.update, one per mirrored copy.
tests/unit/test_keras_distribute.py compares a 2-replica step with a single-device step; it fails
if a Keras upgrade moves this reduction.

Two kinds of per-replica state Keras keeps unsynchronised (aggregation "none"; TensorFlow then
updates only the replica's own copy): BatchNorm moving statistics, here set to replica 0's at the
end of every epoch (as the PyTorch loop broadcasts rank 0's), so validation, checkpoints and every
worker use the same; and dropout seed generators, which start equal on every replica, so each
replica would draw the same masks: replica r's seed is offset by r after building or restoring
(replica 0 keeps the saved seed, so a resumed run continues exactly).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import keras
from keras import ops

from alexnet_lab.core.errors import TrainingError, UserInputError
from alexnet_lab.train.keras.steps import PhaseStep, all_finite, hits, per_example_cross_entropy
from alexnet_lab.train.launch_env import ClusterTask, parse_tf_config


def check_backend(name: str, backend: str) -> None:
    """Raise when --distribute `name` cannot run on the Keras `backend`."""
    if name != "none" and backend != "tensorflow":
        raise UserInputError(f"--distribute {name} uses tf.distribute, which needs KERAS_BACKEND=tensorflow; received "
                             f"KERAS_BACKEND={backend}. For PyTorch, train with --framework torch started by torchrun.")


def already_reduced(optimizer_class: type) -> type:
    """A subclass of a Keras optimizer that expects gradients already summed over the replicas."""
    if not hasattr(optimizer_class, "_all_reduce_sum_gradients"):
        raise TrainingError(f"this Keras version ({keras.__version__}) no longer all-reduces gradients where this "
                            "project expects (TFOptimizer._all_reduce_sum_gradients); run with --distribute none.")

    def _all_reduce_sum_gradients(self, grads_and_vars):
        return list(grads_and_vars)  # DistributedPhaseStep summed them over the replicas already

    return type(f"AlreadyReduced{optimizer_class.__name__}", (optimizer_class,),
                {"_all_reduce_sum_gradients": _all_reduce_sum_gradients})


def dropout_seed_states(model) -> list:
    """The seed-generator state variables of the model's active Dropout layers."""
    return [layer.seed_generator.state for layer in model.layers
            if isinstance(layer, keras.layers.Dropout) and getattr(layer, "seed_generator", None) is not None]


class DistributedPhaseStep(PhaseStep):
    """PhaseStep under a tf.distribute strategy: `x`, `y` are distributed batches; run() returns
    the loss of the global batch and its correct predictions, summed over the replicas."""

    def __init__(self, model, phase, config, loss_scale, strategy):
        self.strategy = strategy
        self.optimizer_classes = {"sgd": already_reduced(keras.optimizers.SGD),
                                  "adamw": already_reduced(keras.optimizers.AdamW)}
        with strategy.scope():  # the optimizer variables become mirrored variables
            super().__init__(model, phase, config, loss_scale)

    def _compile(self) -> tuple:
        import tensorflow as tf

        strategy, model, variables = self.strategy, self.model, self.variables
        smoothing, total = self.config.label_smoothing, tf.distribute.ReduceOp.SUM
        seeds = dropout_seed_states(model)

        def replica_grads(x, y, scale):
            context = tf.distribute.get_replica_context()
            local_count = tf.shape(y)[0]
            global_count = context.all_reduce(total, tf.cast(local_count, tf.float32))

            def forward_backward():
                with tf.GradientTape() as tape:
                    logits = model(x, training=True)
                    loss = ops.sum(per_example_cross_entropy(logits, y, smoothing)) / global_count
                    scaled = loss * scale
                return loss, hits(logits, y), tape.gradient(scaled, variables)

            def nothing():  # a short last batch can leave a replica no images; BatchNorm cannot run on none
                for state in seeds:  # draw the dropout seeds the forward pass would have drawn
                    state.assign(state.value + tf.constant([0, 1], state.dtype))
                return tf.constant(0.0), tf.constant(0, tf.int32), [tf.zeros(v.shape, v.dtype) for v in variables]

            loss, correct, grads = tf.cond(local_count > 0, forward_backward, nothing)
            grads = [g / scale for g in context.all_reduce(total, grads)]  # the one all-reduce
            return loss, correct, all_finite(grads), grads

        @tf.function(reduce_retracing=True)
        def grads_fn(x, y, scale):
            loss, correct, finite, grads = strategy.run(replica_grads, args=(x, y, scale))
            return (strategy.reduce(total, loss, axis=None), strategy.reduce(total, correct, axis=None),
                    strategy.experimental_local_results(finite)[0], grads)  # finite: the same on every replica

        @tf.function(reduce_retracing=True)
        def apply_fn(grads):
            strategy.run(self._update, args=(grads,))

        return (lambda x, y, scale: grads_fn(x, y, tf.constant(scale, tf.float32))), apply_fn

    def _compile_fused(self):
        return None  # the replicas' all-reduce sits between the gradients and the update


@dataclass
class Distribution:
    """A resolved --distribute: the strategy and what the loop does differently under it."""

    name: str  # 'mirrored' or 'multi-worker'
    strategy: object
    devices: list[str]  # this machine's replica devices
    task: ClusterTask | None = None  # multi-worker only

    def __post_init__(self) -> None:
        self._functions: dict = {}  # the replica functions below, traced once each

    @property
    def is_chief(self) -> bool:
        return self.task is None or self.task.is_chief

    def resolved(self) -> dict:
        """What config.json records under resolved.distribute."""
        workers = self.task.workers if self.task else 1
        doc = {"strategy": self.name, "replicas": int(self.strategy.num_replicas_in_sync), "workers": workers,
               "devices": self.devices}
        if self.task is not None:
            doc.update({"task_type": self.task.task_type, "task_index": self.task.index, "chief": self.task.is_chief})
        return doc

    def scope(self):
        return self.strategy.scope()

    def distribute_dataset(self, dataset):
        """Split each global batch of `dataset` over the replicas. Sharding by DATA: the store is
        in memory (no files to shard) and every worker builds the same epoch order."""
        import tensorflow as tf

        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return self.strategy.experimental_distribute_dataset(dataset.with_options(options))

    def phase_step(self, model, phase, config, loss_scale) -> DistributedPhaseStep:
        return DistributedPhaseStep(model, phase, config, loss_scale, self.strategy)

    def _on_replicas(self, key, fn, *args):
        """strategy.run(fn, args) in a tf.function made once per `key`."""
        import tensorflow as tf

        if key not in self._functions:
            self._functions[key] = tf.function(lambda *a: self.strategy.run(fn, args=a))
        return self._functions[key](*args)

    def offset_dropout_seeds(self, model) -> None:
        """Give replica r the dropout seeds of replica 0 plus r (call after building or restoring)."""
        import tensorflow as tf

        states = dropout_seed_states(model)
        if not states or self.strategy.num_replicas_in_sync == 1:
            return

        def offset():
            replica = tf.cast(tf.distribute.get_replica_context().replica_id_in_sync_group, tf.int64)
            for state in states:  # aggregation 'none': each replica assigns its own copy
                state.assign(state.value + tf.stack([replica, tf.constant(0, tf.int64)]))

        self._on_replicas(("dropout", id(model)), offset)

    def sync_batchnorm(self, model) -> None:
        """Every replica takes replica 0's BatchNorm moving statistics (an all-reduce of replica 0's
        value and zeros elsewhere, which works across workers too)."""
        import tensorflow as tf

        stats = [w for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)
                 for w in (layer.moving_mean, layer.moving_variance)]
        if not stats or self.strategy.num_replicas_in_sync == 1:
            return

        def broadcast():
            context = tf.distribute.get_replica_context()
            first = tf.equal(context.replica_id_in_sync_group, 0)
            values = context.all_reduce(tf.distribute.ReduceOp.SUM,
                                        [tf.where(first, v.value, tf.zeros_like(v.value)) for v in stats])
            for variable, value in zip(stats, values):
                variable.assign(value)

        self._on_replicas(("batchnorm", id(model)), broadcast)

    def agree(self, values: list[float]) -> list[float]:
        """The mean over the workers of per-worker numbers (as given without multi-worker): every
        worker then takes the same best-epoch and early-stopping decisions."""
        if self.task is None or self.task.workers == 1:
            return list(values)
        import tensorflow as tf

        def mean(value):  # tf.identity puts the value on the replica's device, where a collective starts
            return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.MEAN, tf.identity(value))

        result = self._on_replicas("agree", mean, tf.constant(values, tf.float64))
        return [float(v) for v in self.strategy.experimental_local_results(result)[0].numpy()]

    def check_same_start(self, epoch: int) -> None:
        """Raise unless every worker resumes at the same epoch (all read the chief's checkpoint)."""
        mean, mean_square = self.agree([float(epoch), float(epoch) ** 2])
        if mean_square != mean**2:
            raise TrainingError(f"the workers would resume at different epochs (this one at {epoch + 1}); every worker "
                                "must read the chief's checkpoint: put --out on storage all machines share.")


def resolve_distribution(name: str, device: str) -> Distribution | None:
    """Create the strategy for --distribute (None for 'none'). Call it before TensorFlow starts
    computing: MultiWorkerMirroredStrategy and the logical-CPU split must come first.

    Raises:
        UserInputError: not the TensorFlow backend, or TF_CONFIG missing / invalid for multi-worker.
    """
    if name == "none":
        return None
    check_backend(name, keras.backend.backend())
    import tensorflow as tf

    from alexnet_lab.frameworks.keras.device import replica_devices

    if name == "mirrored":
        devices = replica_devices(device)
        return Distribution(name, tf.distribute.MirroredStrategy(devices), devices)
    task = parse_tf_config(os.environ.get("TF_CONFIG"))
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    return Distribution(name, strategy, list(strategy.extended.worker_devices), task)
