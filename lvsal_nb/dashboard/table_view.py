"""The answers table: one row per answer, sortable, filtered by method / hallucinated only / object.

The rows go to the page once; filtering runs in the page (a CustomJS callback sets the IndexFilter of
the table's CDSView from three small columns), so it costs no round trip to the server and stays fast
on a busy machine. `apply()` is the same filter in Python (RunData.filter_rows), for notebooks and
tests; the browser test checks that the two agree.
"""

from __future__ import annotations

import time

from bokeh.layouts import column, row
from bokeh.models import (
    CDSView,
    Checkbox,
    ColumnDataSource,
    CustomJS,
    DataTable,
    Div,
    HTMLTemplateFormatter,
    IndexFilter,
    NumberFormatter,
    Select,
    TableColumn,
)

ALL = "(all)"


class AnswersTable:
    """Filters + DataTable over `data.answers`. `on_select(row)` is called with the answer row."""

    def __init__(self, data, on_select):
        self.data = data
        a = data.answers
        cols = ["row", "method", "image_id", "caption_html", "saliency", "n_tokens"]
        if data.task == "chair":
            cols += ["chair_s", "chair_i", "recall", "n_words", "hallucinated"]
        else:
            cols += ["split", "object", "label", "answer", "correct"]
        self.source = ColumnDataSource({c: a[c].tolist() for c in cols})
        # the filter's inputs, small: bad = hallucinated (CHAIR) / wrong answer (POPE); objs = "|a|b|"
        self.source.data["f_bad"] = (
            (
                (a["chair_s"] > 0) if data.task == "chair" else (a["correct"] == False)  # noqa: E712
            )
            .astype(int)
            .tolist()
        )
        names = (
            a["objects"].str.split(", ")
            if data.task == "chair"
            else a["object"].astype(str).map(lambda o: [o])
        )
        self.source.data["f_objs"] = ["|" + "|".join(n) + "|" for n in names]
        self.filter = IndexFilter(indices=list(range(len(a))))
        num = NumberFormatter(format="0.000")
        columns = [
            TableColumn(field="method", title="method", width=80),
            TableColumn(field="image_id", title="image", width=60),
            TableColumn(
                field="caption_html",
                title="caption (red: hallucinated)",
                width=420,
                formatter=HTMLTemplateFormatter(template="<%= value %>"),
                sortable=False,
            ),
        ]
        if data.task == "chair":
            columns += [
                TableColumn(field="chair_s", title="CHAIR_S", width=60),
                TableColumn(field="chair_i", title="CHAIR_I", width=60, formatter=num),
                TableColumn(field="recall", title="recall", width=60, formatter=num),
                TableColumn(field="n_words", title="words", width=50),
            ]
        else:
            columns += [
                TableColumn(field="split", title="split", width=80),
                TableColumn(field="object", title="object", width=70),
                TableColumn(field="answer", title="answer", width=50),
                TableColumn(field="label", title="truth", width=50),
                TableColumn(field="correct", title="correct", width=55),
            ]
        columns.append(TableColumn(field="saliency", title="mean saliency", width=80, formatter=num))
        self.table = DataTable(
            source=self.source,
            view=CDSView(filter=self.filter),
            columns=columns,
            width=900,
            height=520,
            sortable=True,
            selectable=True,
            index_position=None,
            name="answers_table",
        )
        self.method = Select(
            title="method", value=ALL, options=[ALL, *data.methods], name="filter_method", width=140
        )
        self.only_bad = Checkbox(
            label="hallucinated only" if data.task == "chair" else "wrong answers only",
            active=False,
            name="filter_bad",
        )
        self.object = Select(
            title="object", value=ALL, options=[ALL, *data.objects()], name="filter_object", width=140
        )
        self.count = Div(text="", name="answers_count")
        self.last_filter_s = 0.0
        js = CustomJS(
            args=dict(
                src=self.source,
                flt=self.filter,
                method=self.method,
                obj=self.object,
                bad=self.only_bad,
                count=self.count,
                total=len(a),
                all=ALL,
            ),
            code=FILTER_JS,
        )
        for w in (self.method, self.object):
            w.js_on_change("value", js)
        self.only_bad.js_on_change("active", js)
        self.source.selected.on_change("indices", lambda _a, _o, new: new and on_select(int(new[0])))
        self.apply()
        self.layout = column(row(self.method, self.object, self.only_bad, self.count), self.table)

    def apply(self) -> list[int]:
        """Apply the current filters; returns the kept answer rows."""
        t0 = time.perf_counter()
        rows = self.data.filter_rows(
            None if self.method.value == ALL else self.method.value,
            bool(self.only_bad.active),
            None if self.object.value == ALL else self.object.value,
        )
        self.filter.indices = rows
        self.last_filter_s = time.perf_counter() - t0
        self.count.text = f"<span class='lvsal-count'>{len(rows)} of {len(self.data.answers)} answers</span>"
        return rows


FILTER_JS = """
const d = src.data;
const get = (k) => (d.get ? d.get(k) : d[k]);
const m = get('method'), b = get('f_bad'), o = get('f_objs');
const want_m = method.value === all ? null : method.value;
const want_o = obj.value === all ? null : '|' + obj.value + '|';
const only_bad = bad.active;
const keep = [];
for (let i = 0; i < m.length; i++) {
  if (want_m !== null && m[i] !== want_m) continue;
  if (only_bad && !b[i]) continue;
  if (want_o !== null && !o[i].includes(want_o)) continue;
  keep.push(i);
}
flt.indices = keep;
count.text = "<span class='lvsal-count'>" + keep.length + " of " + total + " answers</span>";
"""
