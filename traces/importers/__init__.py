"""Importers of public production traces into the native trace schema.

In: raw files of Google ClusterData 2011 / 2019 and Alibaba cluster-trace-v2018.
Out: ``pa.Table`` in ``traces.schema.TRACE_SCHEMA`` plus an import report.
Modules: ``common`` (reading, rejects, report), ``lifecycle`` (start/exit
pairing), ``build`` (cgroup tables), ``emit`` (events), ``sharing`` (rules),
and one module per source.
"""

IMPORTERS: tuple[str, ...] = ("google2011", "google2019", "alibaba2018")
