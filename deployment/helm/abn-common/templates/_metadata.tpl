{{/*
commonLabels of every object (and pod) of a chart: global.commonLabels, then the chart's own
commonLabels (which win). Label lines, or nothing. Never part of a selector: selectors are
immutable, so adding a label later must not change one.
Call with the chart's .Values.
*/}}
{{- define "abn-common.commonLabels" -}}
{{- $global := .global | default dict }}
{{- with merge (deepCopy (.commonLabels | default dict)) ($global.commonLabels | default dict) }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{/*
The `annotations:` of an object: global.commonAnnotations, the chart's commonAnnotations, then
the object's own (which win: hooks and checkov reasons are never overridden). Nothing when empty.
Call with (dict "values" .Values "annotations" (dict ...)); "annotations" may also be YAML text.
*/}}
{{- define "abn-common.annotations" -}}
{{- $global := .values.global | default dict }}
{{- $own := .annotations | default dict }}
{{- if kindIs "string" $own }}{{ $own = fromYaml $own }}{{ end }}
{{- $all := merge (deepCopy $own) (deepCopy (.values.commonAnnotations | default dict)) ($global.commonAnnotations | default dict) }}
{{- with $all -}}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
