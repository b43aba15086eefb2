"""The serving kernel: registry versions in onnxruntime behind the Open Inference Protocol v2.

    mlops-lab serve churn@production --canary churn@candidate --canary-share 0.1
    deployment = ml.serve("churn@production")          # from a notebook, watched by the lab
    mlops-lab predict churn@production rows.parquet scores.parquet

Layers: ``protocol`` (v2 JSON and binary tensors) → ``runtime`` (a session per version) →
``batcher`` (dynamic batching) → ``deployment`` (primary, canary, shadow; hot swaps) →
``httpserver`` (the HTTP front) → ``process`` (the command).  ``manager`` starts, watches and
restarts serving processes for the lab; ``predict`` scores files in chunks.
"""
