"""Applications built on the library: the official `SimCSE` search tool's API (`search`), the notebooks'
exercise checkers (`exercises`), and, with the notebooks extra (plotly, ipywidgets), figure builders (`viz`)
and JupyterLab widgets (`widgets`)."""
