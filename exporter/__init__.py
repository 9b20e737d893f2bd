"""TFLite exporter with an accuracy-drift gate (needs TensorFlow: `pip install tledge[train]`).

Entry point: `tledge.exporter.export.export_model(run_dir, ExportOptions(...))`, which
returns an `ExportResult`; `tledge export` is its command line.
"""
