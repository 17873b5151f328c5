"""Programs shipped into every container under ``/launch/lib`` (``build.support_files``).

They run on the container's own ``python3`` and import nothing from launch_jupyter:
``notebook_executor.py`` (as ``launch_notebook.py``), ``run_wrapper.py`` (as
``launch_run.py``) and ``parameters_standin.py`` (as ``launch_jupyter/__init__.py``).
"""
