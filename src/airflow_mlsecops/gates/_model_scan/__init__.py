"""Engine of the model-file scanner gate (:mod:`airflow_mlsecops.gates.model_scan`). Private.

* :mod:`.source` - a buffered byte reader that seeks over payloads, and decompression limits.
* :mod:`.pickles` - a static pickle opcode analyser (a symbolic stack machine; never unpickles).
* :mod:`.allowlist` - the exact ``module.name`` references real model files use, and known gadgets.
* :mod:`.formats` - NumPy, safetensors, Keras, HDF5 and ONNX checks.
* :mod:`.engine` - content detection, archives and compressed streams, per-file reports.
* :mod:`.build_allowlist` - the maintainer tool that regenerates the scikit-learn part of the allowlist.
"""
