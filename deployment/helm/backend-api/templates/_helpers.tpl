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
{{- with (include "abn-common.commonLabels" .Values) }}
{{ . }}
{{- end }}
{{- end }}

{{- define "backend-api.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "backend-api.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "backend-api.image" -}}
{{- include "abn-common.image" (dict "image" .Values.image "global" .Values.global "chart" .Chart) }}
{{- end }}

{{/*
The grace period must cover the drain and the shutdown timeout. Defaults (the image's 5 s drain,
the binary's 10 s shutdown timeout) fit Kubernetes' 30 s; values the operator sets are checked.
*/}}
{{- define "backend-api.terminationGracePeriodSeconds" -}}
{{- $c := .Values.config }}
{{- $needed := add (default 0 $c.drainPeriodSeconds) (default 0 $c.shutdownTimeoutSeconds) }}
{{- if ge (int $needed) (int .Values.terminationGracePeriodSeconds) }}
{{- fail (printf "backend-api: terminationGracePeriodSeconds (%v) must exceed config.drainPeriodSeconds + config.shutdownTimeoutSeconds (%v)" .Values.terminationGracePeriodSeconds $needed) }}
{{- end }}
{{- .Values.terminationGracePeriodSeconds }}
{{- end }}

{{/*
One environment variable, rendered only when the operator set it (null: the binary's default).
Call with (list "NAME" value) or (list "NAME" value "suffix"); YAML numbers print as integers.
*/}}
{{- define "backend-api.envVar" -}}
{{- $value := index . 1 }}
{{- if not (kindIs "invalid" $value) }}
- name: {{ index . 0 }}
  value: {{ printf "%v%s" (ternary ($value | int64) $value (kindIs "float64" $value)) (ternary (last .) "" (eq (len .) 3)) | quote }}
{{- end }}
{{- end }}

{{/*
The container's environment: only what the operator chose. The image sets LISTEN_ADDR and
DRAIN_PERIOD; the binary owns every other default.
*/}}
{{- define "backend-api.env" -}}
{{- $c := .Values.config }}
{{- include "backend-api.envVar" (list "SIMULATED_LATENCY_MS" $c.simulatedLatencyMs) }}
{{- with $c.externalLogsUrl }}
{{- /* Through tpl, so a dev values file can name its own release's log-provider. */}}
- name: EXTERNAL_LOGS_URL
  value: {{ tpl . $ | quote }}
{{- end }}
{{- include "backend-api.envVar" (list "EXTERNAL_LOGS_CONNECT_TIMEOUT" $c.externalLogsConnectTimeout) }}
{{- include "backend-api.envVar" (list "EXTERNAL_LOGS_TIMEOUT" $c.externalLogsTimeout) }}
{{- include "backend-api.envVar" (list "EXTERNAL_LOGS_RETRIES" $c.externalLogsRetries) }}
{{- include "backend-api.envVar" (list "EXTERNAL_LOGS_STREAM_TIMEOUT" $c.externalLogsStreamTimeout) }}
{{- include "backend-api.envVar" (list "EXTERNAL_LOGS_READ_IDLE_TIMEOUT" $c.externalLogsReadIdleTimeout) }}
{{- include "backend-api.envVar" (list "EXTERNAL_LOGS_ALLOW_PLAINTEXT" $c.externalLogsAllowPlaintext) }}
{{- include "backend-api.envVar" (list "REQUEST_TIMEOUT" $c.requestTimeout) }}
{{- include "backend-api.envVar" (list "DRAIN_PERIOD" $c.drainPeriodSeconds "s") }}
{{- include "backend-api.envVar" (list "SHUTDOWN_TIMEOUT" $c.shutdownTimeoutSeconds "s") }}
{{- include "backend-api.envVar" (list "DOWNLOAD_RATE_LIMIT" $c.downloadRateLimit) }}
{{- include "backend-api.envVar" (list "RUST_LOG" $c.rustLog) }}
{{- with .Values.apiTokensSecretName }}
- name: API_TOKENS_FILE
  value: {{ printf "/var/run/secrets/abn-stack/api-tokens/%s" $.Values.apiTokensSecretKey | quote }}
{{- end }}
{{- /* Deprecated map form (chart 0.1.0), still rendered; extraEnv is the list form. */}}
{{- include "abn-common.envVars" (dict "env" $c.extraEnv "root" $) }}
{{- if .Values.integrationKeySecretName }}
{{- if eq .Values.integrationKeyDelivery "env" }}
- name: EXTERNAL_INTEGRATION_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.integrationKeySecretName }}
      key: {{ .Values.integrationKeySecretKey }}
{{- else }}
- name: EXTERNAL_INTEGRATION_KEY_FILE
  value: {{ printf "%s/%s" (include "backend-api.keyDir" .) .Values.integrationKeySecretKey | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Where the integration Secret's directory is mounted (file delivery). The whole directory, never
a subPath: the kubelet updates a Secret volume by swapping its ..data link, which a subPath mount
never sees, so a rotated key would not reach the running pod.
*/}}
{{- define "backend-api.keyDir" -}}
/var/run/secrets/abn-stack/integration-key
{{- end }}

{{/*
The pod's volumes for file delivery: the Secret read-only, 0440 (root:<fsGroup> as the kubelet
applies it, readable by the pod's group only). Empty in env delivery or without a Secret.
*/}}
{{- define "backend-api.keyVolumes" -}}
{{- if and .Values.integrationKeySecretName (eq .Values.integrationKeyDelivery "file") }}
- name: integration-key
  secret:
    secretName: {{ .Values.integrationKeySecretName }}
    # 0440
    defaultMode: 288
{{- end }}
{{- with .Values.apiTokensSecretName }}
- name: api-tokens
  secret:
    secretName: {{ . }}
    # 0440
    defaultMode: 288
{{- end }}
{{- end }}

{{- define "backend-api.keyMounts" -}}
{{- if and .Values.integrationKeySecretName (eq .Values.integrationKeyDelivery "file") }}
- name: integration-key
  mountPath: {{ include "backend-api.keyDir" . }}
  readOnly: true
{{- end }}
{{- if .Values.apiTokensSecretName }}
- name: api-tokens
  mountPath: /var/run/secrets/abn-stack/api-tokens
  readOnly: true
{{- end }}
{{- end }}

{{/*
What the Deployment's container and the umbrella's config-check hook Job share, from the shared
container template (abn-common.container) so the check sees exactly the environment and files the
pods get: image, security context, resources, env (with extraEnv), envFrom, volume mounts.
*/}}
{{- define "backend-api.containerBase" -}}
{{- include "abn-common.container" (dict "root" . "values" .Values "image" (include "backend-api.image" .)
      "pullPolicy" .Values.image.pullPolicy "securityContext" .Values.securityContext
      "resources" .Values.resources "env" (include "backend-api.env" .) "mounts" (include "backend-api.keyMounts" .)) }}
{{- end }}

{{/* The Deployment's own pod fields (abn-common.podSpec adds the shared ones). */}}
{{- define "backend-api.podFields" -}}
serviceAccountName: {{ include "backend-api.serviceAccountName" . }}
automountServiceAccountToken: false
enableServiceLinks: false
terminationGracePeriodSeconds: {{ include "backend-api.terminationGracePeriodSeconds" . }}
{{- end }}

{{/* The Deployment's container: the shared base, its port and probes. */}}
{{- define "backend-api.container" -}}
- name: backend-api
  {{- include "backend-api.containerBase" . | nindent 2 }}
  ports:
    # The port the image listens on (its LISTEN_ADDR); service.port is the Service's own.
    - name: http
      containerPort: 5000
      protocol: TCP
  {{- include "abn-common.probes" .Values.probes | trim | nindent 2 }}
{{- end }}
