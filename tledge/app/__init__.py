"""`tledge app`: the Streamlit review app (optional `[app]` extra) and its TF-free logic.

- `review`: collected frames sorted by doubt, filed into a dataset's class folders.
- `runs`: what the app shows of a run folder (metrics, history, plots, exported models).
- `streamlit_app`: the three pages; run by `tledge app`.
"""
