"""What a Keras model configuration may name: an allowlist of Keras classes and functions that only compute.

Keras imports and calls whatever a configuration's ``module`` / ``class_name`` pair names, and any
``keras.*`` name resolves (``keras.utils.get_file`` downloads a file when deserialized: the
CVE-2025-8747 pattern). So a Keras name is allowed only when it is one of the layer, initializer,
regularizer, constraint, activation (and, for compiled models, optimizer, schedule, loss and metric)
classes and functions below, which cannot fetch, read files or run code from the configuration;
the model containers (``Sequential``, ``Functional``, ``Model``), dtype policies and the tensor
operations of ``keras.ops`` (which a functional model may call) are allowed too.
Left out on purpose: ``Lambda`` and serialized lambdas (run Python code), ``TFSMLayer`` (loads and
runs a SavedModel), ``TFOpLambda`` / ``SlicingOpLambda`` / ``TensorFlowOpLayer`` (call TensorFlow
operations named by the configuration, ``tf.io.write_file`` included) and everything in
``keras.utils``, ``keras.saving``, ``keras.callbacks``, ``keras.datasets``, ``keras.applications``.
A lookup layer whose vocabulary is a path (read, possibly remotely, when the layer is built) is
rejected too.
"""

from __future__ import annotations

from typing import Any

_LAYERS = frozenset(
    [
        "InputLayer",
        "Input",
        "Dense",
        "EinsumDense",
        "Embedding",
        "Masking",
        "Identity",
        "Activation",
        "ELU",
        "LeakyReLU",
        "PReLU",
        "ReLU",
        "Softmax",
        "AdditiveAttention",
        "Attention",
        "GroupQueryAttention",
        "MultiHeadAttention",
        "Conv1D",
        "Conv2D",
        "Conv3D",
        "Conv1DTranspose",
        "Conv2DTranspose",
        "Conv3DTranspose",
        "Convolution1D",
        "Convolution2D",
        "Convolution3D",
        "Convolution1DTranspose",
        "Convolution2DTranspose",
        "Convolution3DTranspose",
        "DepthwiseConv1D",
        "DepthwiseConv2D",
        "SeparableConv1D",
        "SeparableConv2D",
        "SeparableConvolution1D",
        "SeparableConvolution2D",
        "Add",
        "Average",
        "Concatenate",
        "Dot",
        "Maximum",
        "Minimum",
        "Multiply",
        "Subtract",
        "BatchNormalization",
        "GroupNormalization",
        "LayerNormalization",
        "SpectralNormalization",
        "UnitNormalization",
        "RMSNormalization",
        "AveragePooling1D",
        "AveragePooling2D",
        "AveragePooling3D",
        "AvgPool1D",
        "AvgPool2D",
        "AvgPool3D",
        "MaxPooling1D",
        "MaxPooling2D",
        "MaxPooling3D",
        "MaxPool1D",
        "MaxPool2D",
        "MaxPool3D",
        "GlobalAveragePooling1D",
        "GlobalAveragePooling2D",
        "GlobalAveragePooling3D",
        "GlobalAvgPool1D",
        "GlobalAvgPool2D",
        "GlobalAvgPool3D",
        "GlobalMaxPooling1D",
        "GlobalMaxPooling2D",
        "GlobalMaxPooling3D",
        "GlobalMaxPool1D",
        "GlobalMaxPool2D",
        "GlobalMaxPool3D",
        "CategoryEncoding",
        "Discretization",
        "HashedCrossing",
        "Hashing",
        "IntegerLookup",
        "Normalization",
        "StringLookup",
        "TextVectorization",
        "Rescaling",
        "Resizing",
        "CenterCrop",
        "RandomFlip",
        "RandomRotation",
        "RandomZoom",
        "RandomContrast",
        "RandomBrightness",
        "RandomCrop",
        "RandomTranslation",
        "RandomHeight",
        "RandomWidth",
        "AutoContrast",
        "Solarization",
        "RandomGrayscale",
        "RandomHue",
        "RandomSaturation",
        "ActivityRegularization",
        "AlphaDropout",
        "Dropout",
        "GaussianDropout",
        "GaussianNoise",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
        "Cropping1D",
        "Cropping2D",
        "Cropping3D",
        "Flatten",
        "Permute",
        "RepeatVector",
        "Reshape",
        "UpSampling1D",
        "UpSampling2D",
        "UpSampling3D",
        "ZeroPadding1D",
        "ZeroPadding2D",
        "ZeroPadding3D",
        "Bidirectional",
        "ConvLSTM1D",
        "ConvLSTM2D",
        "ConvLSTM3D",
        "GRU",
        "GRUCell",
        "LSTM",
        "LSTMCell",
        "RNN",
        "SimpleRNN",
        "SimpleRNNCell",
        "StackedRNNCells",
        "TimeDistributed",
    ]
)
_INITIALIZERS = frozenset(
    [
        "Constant",
        "GlorotNormal",
        "GlorotUniform",
        "HeNormal",
        "HeUniform",
        "Identity",
        "IdentityInitializer",
        "LecunNormal",
        "LecunUniform",
        "Ones",
        "Orthogonal",
        "OrthogonalInitializer",
        "RandomNormal",
        "RandomUniform",
        "TruncatedNormal",
        "VarianceScaling",
        "Zeros",
        "STFTInitializer",
    ]
)
_REGULARIZERS = frozenset(["L1", "L2", "L1L2", "OrthogonalRegularizer"])
_CONSTRAINTS = frozenset(["MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm", "RadialConstraint"])
_MODELS = frozenset(["Sequential", "Functional", "Model"])
_DTYPES = frozenset(
    ["DTypePolicy", "FloatDTypePolicy", "QuantizedDTypePolicy", "QuantizedFloat8DTypePolicy", "DTypePolicyMap", "Policy"]
)
_OPTIMIZERS = frozenset(
    [
        "Adadelta",
        "Adafactor",
        "Adagrad",
        "Adam",
        "AdamW",
        "Adamax",
        "Ftrl",
        "Lamb",
        "Lion",
        "LossScaleOptimizer",
        "Nadam",
        "RMSprop",
        "SGD",
        "CosineDecay",
        "CosineDecayRestarts",
        "ExponentialDecay",
        "InverseTimeDecay",
        "PiecewiseConstantDecay",
        "PolynomialDecay",
    ]
)
_LOSSES_METRICS = frozenset(
    [
        "BinaryCrossentropy",
        "BinaryFocalCrossentropy",
        "CategoricalCrossentropy",
        "CategoricalFocalCrossentropy",
        "CategoricalHinge",
        "CosineSimilarity",
        "Dice",
        "Hinge",
        "Huber",
        "KLDivergence",
        "LogCosh",
        "MeanAbsoluteError",
        "MeanAbsolutePercentageError",
        "MeanSquaredError",
        "MeanSquaredLogarithmicError",
        "Poisson",
        "SparseCategoricalCrossentropy",
        "SquaredHinge",
        "Tversky",
        "CTC",
        "Circle",
        "LossFunctionWrapper",
        "Accuracy",
        "AUC",
        "BinaryAccuracy",
        "BinaryIoU",
        "CategoricalAccuracy",
        "F1Score",
        "FBetaScore",
        "FalseNegatives",
        "FalsePositives",
        "IoU",
        "LogCoshError",
        "Mean",
        "MeanIoU",
        "MeanMetricWrapper",
        "OneHotIoU",
        "OneHotMeanIoU",
        "Precision",
        "PrecisionAtRecall",
        "R2Score",
        "Recall",
        "RecallAtPrecision",
        "RootMeanSquaredError",
        "SensitivityAtSpecificity",
        "SparseCategoricalAccuracy",
        "SparseTopKCategoricalAccuracy",
        "SpecificityAtSensitivity",
        "Sum",
        "TopKCategoricalAccuracy",
        "TrueNegatives",
        "TruePositives",
    ]
)
#: Built-in functions a configuration names by string (activations, losses, metrics).
FUNCTIONS = frozenset(
    [
        "relu",
        "relu6",
        "sigmoid",
        "softmax",
        "softplus",
        "softsign",
        "tanh",
        "elu",
        "selu",
        "exponential",
        "gelu",
        "hard_sigmoid",
        "hard_silu",
        "hard_swish",
        "leaky_relu",
        "linear",
        "log_softmax",
        "mish",
        "silu",
        "swish",
        "celu",
        "glu",
        "hard_tanh",
        "hard_shrink",
        "soft_shrink",
        "sparse_plus",
        "sparsemax",
        "squareplus",
        "tanh_shrink",
        "threshold",
        "log_sigmoid",
        "sparse_sigmoid",
        "mean_squared_error",
        "mse",
        "mean_absolute_error",
        "mae",
        "mean_absolute_percentage_error",
        "mape",
        "mean_squared_logarithmic_error",
        "msle",
        "binary_crossentropy",
        "binary_focal_crossentropy",
        "categorical_crossentropy",
        "categorical_focal_crossentropy",
        "sparse_categorical_crossentropy",
        "hinge",
        "squared_hinge",
        "categorical_hinge",
        "huber",
        "log_cosh",
        "logcosh",
        "kl_divergence",
        "kld",
        "kullback_leibler_divergence",
        "poisson",
        "cosine_similarity",
        "ctc",
        "dice",
        "tversky",
        "accuracy",
        "acc",
        "binary_accuracy",
        "categorical_accuracy",
        "sparse_categorical_accuracy",
        "top_k_categorical_accuracy",
        "sparse_top_k_categorical_accuracy",
    ]
)
#: Internal markers Keras' deserializer handles itself (tensors, arrays, bytes... made from plain values).
SPECIAL = frozenset(["__keras_tensor__", "__tensor__", "__numpy__", "__bytes__", "__typespec__", "__ellipsis__", "__slice__"])

#: Module path segment -> the names allowed from a module with that segment.
CATEGORIES: dict[str, frozenset[str]] = {
    "layers": _LAYERS,
    "initializers": _INITIALIZERS,
    "regularizers": _REGULARIZERS,
    "constraints": _CONSTRAINTS,
    "activations": FUNCTIONS,
    "models": _MODELS,
    "dtype_policies": _DTYPES,
    "mixed_precision": _DTYPES,
    "optimizers": _OPTIMIZERS,
    "schedules": _OPTIMIZERS,
    "losses": _LOSSES_METRICS | FUNCTIONS,
    "metrics": _LOSSES_METRICS | FUNCTIONS,
    "functional": _MODELS,
    "sequential": _MODELS,
    "model": _MODELS,
}
#: Names allowed from the top-level ``keras`` module, and for a configuration without modules (Keras 2).
TOP_LEVEL = _MODELS | _DTYPES
ALL_CLASSES = _LAYERS | _INITIALIZERS | _REGULARIZERS | _CONSTRAINTS | _MODELS | _DTYPES | _OPTIMIZERS | _LOSSES_METRICS
#: Module segments and names that fetch, read, write or run code: a reference to them is critical.
DANGEROUS_SEGMENTS = frozenset(["utils", "saving", "callbacks", "datasets", "applications", "export"])
DANGEROUS_NAMES = frozenset(["get_file", "Lambda", "TFSMLayer", "TFOpLambda", "SlicingOpLambda", "TensorFlowOpLayer"])
_LOOKUPS = frozenset(["StringLookup", "IntegerLookup", "TextVectorization"])
KERAS_ROOTS = ("keras", "tf_keras")


def keras_module(module: str) -> bool:
    """Whether ``module`` is Keras itself (``keras``, ``keras.*``, ``tf_keras.*``)."""
    return any(module == root or module.startswith(root + ".") for root in KERAS_ROOTS)


def _allowed_from(module: str | None) -> frozenset[str]:
    if module is None:  # Keras 2: the name is looked up among the category's own objects
        return ALL_CLASSES | FUNCTIONS
    if module in KERAS_ROOTS:
        return TOP_LEVEL
    allowed: frozenset[str] = frozenset()
    for segment in module.split(".")[1:]:
        allowed |= CATEGORIES.get(segment, frozenset())
    return allowed


def keras_name_problem(module: str | None, class_name: str, config: Any) -> tuple[str, str] | None:
    """Why a Keras object named in a configuration is not allowed, as (``critical``/``high``, reason); None if allowed.

    :param module: the object's ``module`` (None when the configuration has none: Keras 2).
    :param class_name: its ``class_name`` (``function`` for a function named by ``config``).
    :param config: its ``config``.
    """
    if class_name in SPECIAL and module is None:
        return None
    function = class_name == "function"
    name = config if function and isinstance(config, str) else class_name
    ref = f"{module}.{name}" if module else name
    segments = set((module or "").split(".")[1:])
    if name in DANGEROUS_NAMES or segments & DANGEROUS_SEGMENTS:
        return "critical", f"names {ref}, which fetches, reads or runs code when Keras deserializes it"
    if "ops" in segments and not function and isinstance(name, str) and name.isidentifier():
        return None  # keras.src.ops.*: tensor operations a functional model calls (Add, Matmul...), compute only
    if function and module == "builtins":  # Keras looks the name up among its built-in functions only
        allowed: frozenset[str] = FUNCTIONS
    elif function:
        allowed = FUNCTIONS if module is None or keras_module(module) else frozenset()
    else:
        allowed = _allowed_from(module)
    if not isinstance(name, str) or name not in allowed:
        return "high", (
            f"names {ref}, which is not one of the Keras layers, initializers, regularizers, constraints, "
            "activations, optimizers, losses or metrics known to only compute"
        )
    if class_name in _LOOKUPS and isinstance(config, dict) and isinstance(config.get("vocabulary"), str):
        return "high", f"{class_name} reads its vocabulary from the path {config['vocabulary']!r} when it is built"
    return None
