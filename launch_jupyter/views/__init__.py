"""Shared views: state symbols and colours, text tables, HTML cards and tables.

Every front door renders through these (the CLI and the magics' text, the magics' and the
widgets' HTML, the item handle's card); none of them imports ipywidgets or a front door.
See docs/architecture.md.
"""
