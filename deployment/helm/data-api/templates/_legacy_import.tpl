{{/*
legacyImport: `data-api import-legacy` reads the legacy service's log_<time>.txt files
(legacyImport.existingClaim, mounted read-only) into LOG_DIR/legacy/ on the shared claim, either
as a post-install/post-upgrade hook Job (mode job) or as an init container of every data-api pod,
before the server (mode initContainer). Both are the same container from the shared template
(abn-common.container): the pods' image, securityContext and resources.
*/}}
{{- define "data-api.legacyImportContainer" -}}
- name: import-legacy
  {{- include "abn-common.container" (dict "root" . "values" .Values "image" (include "data-api.image" .)
        "pullPolicy" .Values.image.pullPolicy "securityContext" .Values.securityContext
        "resources" (.Values.legacyImport.resources | default .Values.resources) "mounts" (include "data-api.legacyImportMounts" .)) | nindent 2 }}
  args: [import-legacy, --from, /var/data/legacy]
{{- end }}

{{- define "data-api.legacyImportMounts" -}}
# The image's LOG_DIR: the records volume (the shared claim).
- name: data
  mountPath: /var/data/logs
- name: legacy
  mountPath: /var/data/legacy
  readOnly: true
{{- end }}

{{- define "data-api.legacyImportVolume" -}}
- name: legacy
  persistentVolumeClaim:
    claimName: {{ .Values.legacyImport.existingClaim }}
    readOnly: true
{{- end }}

{{/* "job", "initContainer", or "" when legacyImport is off. */}}
{{- define "data-api.legacyImportMode" -}}
{{- if .Values.legacyImport.enabled }}{{ .Values.legacyImport.mode }}{{ end }}
{{- end }}

{{/* The Job's pod labels: not the StatefulSet's selector labels, so no Service or PDB counts it. */}}
{{- define "data-api.legacyImportLabels" -}}
helm.sh/chart: {{ include "data-api.chart" . }}
app.kubernetes.io/name: {{ printf "%s-legacy-import" (include "data-api.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: legacy-import
app.kubernetes.io/part-of: abn-stack
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with (include "abn-common.commonLabels" .Values) }}
{{ . }}
{{- end }}
{{- end }}
