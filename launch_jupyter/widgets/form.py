"""A submit form generated from a job's parameter schema.

Numbers get number fields, enums a dropdown, booleans a checkbox, strings a text field,
arrays/objects a JSON text field; each field's bounds or choices are shown next to it. No value
is clamped: every change is validated against the schema, the Submit button stays disabled
while a value is invalid and the form says why, and ``submit`` validates once more.
"""

from __future__ import annotations

import json
from typing import Any

import ipywidgets as w

from ..errors import LaunchError, ParameterError
from ..jobs import PRIORITIES, validate_parameters
from ..views.html import esc


def constraint_text(prop: dict) -> str:
    """The bounds, choices or pattern of one property, in words (shown next to its field)."""
    if "enum" in prop:
        return "one of " + ", ".join(json.dumps(v) for v in prop["enum"])
    parts = []
    for key, word in (("minimum", "\u2265"), ("exclusiveMinimum", ">"), ("maximum", "\u2264"),
                      ("exclusiveMaximum", "<")):
        if key in prop:
            parts.append(f"{word} {prop[key]}")
    if "pattern" in prop:
        parts.append(f"matches {prop['pattern']}")
    if prop.get("type") in ("array", "object"):
        parts.append("JSON")
    return ", ".join(parts)


def field_for(name: str, prop: dict) -> w.Widget:
    """The input widget for one schema property; numbers are never clamped by the widget:
    an out-of-bounds value stays as typed and the form says why it is refused."""
    default = prop.get("default")
    ptype = prop.get("type")
    common = {"description": name, "style": {"description_width": "initial"},
              "description_allow_html": False}
    if "description" in prop:
        common["tooltip"] = prop["description"]
    if "enum" in prop:
        options = [(json.dumps(v) if not isinstance(v, str) else v, v) for v in prop["enum"]]
        return w.Dropdown(options=options, value=default, **common)
    if ptype == "boolean":
        return w.Checkbox(value=bool(default), indent=False, **common)
    if ptype == "integer":
        return w.IntText(value=default, **common)
    if ptype == "number":
        return w.FloatText(value=default, **common)
    if ptype == "string":
        return w.Text(value=default, **common)
    return w.Text(value=json.dumps(default), placeholder="JSON", **common)


def _value(prop: dict, widget: w.Widget) -> Any:
    if "enum" in prop or prop.get("type") in ("boolean", "integer", "number", "string"):
        return widget.value
    try:
        return json.loads(widget.value)
    except ValueError as err:
        raise ParameterError(f"not valid JSON ({err})") from None


class SubmitForm(w.VBox):
    """Fields for each parameter of job ``ref``, a queue and priority, and a Submit button."""

    def __init__(self, client: Any, ref: str, *, queue: str | None = None,
                 **kwargs: Any) -> None:
        self.client = client
        self.job = client.job(ref)
        self.schema = self.job.spec.get("schema") or {"type": "object", "properties": {}}
        self.fields: dict[str, w.Widget] = {
            name: field_for(name, prop)
            for name, prop in (self.schema.get("properties") or {}).items()
        }
        queues = [q["name"] for q in client.queues()]
        default_queue = queue or client.config.default_queue
        if default_queue not in queues:
            client.queue(default_queue)  # NotFoundError with the list of queues
        self.queue = w.Dropdown(options=queues, value=default_queue, description="queue")
        self.priority = w.Dropdown(options=sorted(PRIORITIES, key=PRIORITIES.__getitem__),
                                   value="medium", description="priority")
        self.submit_button = w.Button(description="Submit", icon="play",
                                      button_style="primary")
        self.feedback = w.HTML()
        self.submitted: list[Any] = []
        for field in self.fields.values():
            field.observe(lambda _: self.validate(), names="value")
        self.submit_button.on_click(lambda _: self.submit())
        header = w.HTML(f"<b>submit {esc(self.job.ref)}</b>" + (
            "" if self.fields else " <span style='color:#6b7280'>(no parameters)</span>"))
        self.hints = {name: w.HTML(f"<span style='color:#6b7280;font-size:11px'>"
                                   f"{esc(constraint_text(self.schema['properties'][name]))}"
                                   "</span>") for name in self.fields}
        rows = [w.HBox([field, self.hints[name]]) for name, field in self.fields.items()]
        super().__init__([header, *rows, w.HBox([self.queue, self.priority]),
                          w.HBox([self.submit_button, self.feedback])], **kwargs)
        self.validate()

    def values(self) -> dict:
        """The typed, validated values; raises ParameterError naming the bad field."""
        raw = {}
        for name, field in self.fields.items():
            try:
                raw[name] = _value(self.schema["properties"][name], field)
            except ParameterError as err:
                raise ParameterError(f"parameter {name!r}: {err}") from None
        return validate_parameters(raw, self.schema)

    def validate(self) -> bool:
        """Check every field; disable Submit and say why when one is invalid."""
        try:
            self.values()
        except LaunchError as err:
            self.submit_button.disabled = True
            self.feedback.value = f"<span style='color:#dc2626'>{esc(err)}</span>"
            return False
        self.submit_button.disabled = False
        if "color:#dc2626" in self.feedback.value:
            self.feedback.value = ""
        return True

    def submit(self) -> Any:
        """Submit with the form's values (only if they are valid); returns the Item or None."""
        if not self.validate():
            return None
        try:
            values = self.values()
            overrides = {k: v for k, v in values.items()
                         if v != self.schema["properties"][k].get("default")}
            item = self.client.submit(self.job, queue=self.queue.value, parameters=overrides,
                                      priority=self.priority.value)
        except LaunchError as err:
            self.feedback.value = f"<span style='color:#dc2626'>{esc(err)}</span>"
            return None
        self.submitted.append(item)
        self.feedback.value = (f"<span style='color:#16a34a'>submitted item "
                               f"<code>{esc(item.id)}</code> to {esc(self.queue.value)}</span>")
        return item


__all__ = ["SubmitForm", "constraint_text", "field_for"]
