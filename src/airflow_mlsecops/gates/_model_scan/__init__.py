"""Engine of the model-file scanner gate (:mod:`airflow_mlsecops.gates.model_scan`). Private.

* :mod:`.engine` - :class:`~.engine.Scanner`: the recursion over parts (detect, dispatch, record
  findings), text, NumPy, safetensors, HDF5 and ONNX parts; :class:`~.engine.ScanLimits`.
* :mod:`.parts` - a part (a byte stream to judge) and the per-file report.
* :mod:`.detect` - content sniffing: the format a part's first bytes announce.
* :mod:`.archives` - zip and tar archives: structure checks, PyTorch/skops/Keras zips, members.
* :mod:`.compressed` - gzip, bz2, xz, lzma, zlib and lz4 streams.
* :mod:`.pickle_judging` - the pickles in a part (plain, joblib, legacy torch, polyglots), judged.
* :mod:`.pickles` - a static pickle opcode analyser (a symbolic stack machine; never unpickles),
  with :mod:`.pickle_literals` (literal opcodes), :mod:`.pickle_values` (symbolic stand-ins),
  :mod:`.pickle_results` (what an analysis reports) and :mod:`.joblib_arrays` (joblib array sizing).
* :mod:`.source` - a buffered byte reader that seeks over payloads, and decompression limits.
* :mod:`.allowlist` - the exact ``module.name`` references real model files use, and known gadgets.
* :mod:`.formats` - NumPy, safetensors, Keras, HDF5 and ONNX checks.
* :mod:`.build_allowlist` - the maintainer tool that regenerates the scikit-learn part of the allowlist.
"""
