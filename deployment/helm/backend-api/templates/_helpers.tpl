{{/*
Named templates are global across the umbrella and its subcharts: every name here starts with
"backend-api." so the umbrella can call them with a context built from its own values.
*/}}
{{- define "backend-api.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "backend-api.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "backend-api.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "backend-api.selectorLabels" -}}
app.kubernetes.io/name: {{ include "backend-api.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "backend-api.labels" -}}
helm.sh/chart: {{ include "backend-api.chart" . }}
{{ include "backend-api.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: api
app.kubernetes.io/part-of: abn-stack
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "backend-api.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "backend-api.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "backend-api.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Grace period covers the drain and the shutdown timeout, plus slack for the process to exit. */}}
{{- define "backend-api.terminationGracePeriodSeconds" -}}
{{- add .Values.config.drainPeriodSeconds .Values.config.shutdownTimeoutSeconds 5 }}
{{- end }}
