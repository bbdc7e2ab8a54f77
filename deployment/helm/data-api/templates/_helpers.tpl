{{/*
Named templates are global across the umbrella and its subcharts: every name here starts with
"data-api." so the umbrella can call them with a context built from its own values.
*/}}
{{- define "data-api.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "data-api.fullname" -}}
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

{{- define "data-api.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "data-api.selectorLabels" -}}
app.kubernetes.io/name: {{ include "data-api.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "data-api.labels" -}}
helm.sh/chart: {{ include "data-api.chart" . }}
{{ include "data-api.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: store
app.kubernetes.io/part-of: abn-stack
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with (include "abn-common.commonLabels" .Values) }}
{{ . }}
{{- end }}
{{- end }}

{{- define "data-api.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "data-api.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "data-api.image" -}}
{{- include "abn-common.image" (dict "image" .Values.image "global" .Values.global "chart" .Chart) }}
{{- end }}

{{/*
The grace period must cover the drain and the shutdown timeout. Defaults (the image's 5 s drain,
the binary's 10 s shutdown timeout) fit Kubernetes' 30 s; values the operator sets are checked.
*/}}
{{- define "data-api.terminationGracePeriodSeconds" -}}
{{- $c := .Values.config }}
{{- $needed := add (default 0 $c.drainPeriodSeconds) (default 0 $c.shutdownTimeoutSeconds) }}
{{- if ge (int $needed) (int .Values.terminationGracePeriodSeconds) }}
{{- fail (printf "data-api: terminationGracePeriodSeconds (%v) must exceed config.drainPeriodSeconds + config.shutdownTimeoutSeconds (%v)" .Values.terminationGracePeriodSeconds $needed) }}
{{- end }}
{{- .Values.terminationGracePeriodSeconds }}
{{- end }}

{{/*
One environment variable, rendered only when the operator set it (null: the binary's default).
Call with (list "NAME" value) or (list "NAME" value "suffix"); YAML numbers print as integers.
*/}}
{{- define "data-api.envVar" -}}
{{- $value := index . 1 }}
{{- if not (kindIs "invalid" $value) }}
- name: {{ index . 0 }}
  value: {{ printf "%v%s" (ternary ($value | int64) $value (kindIs "float64" $value)) (ternary (last .) "" (eq (len .) 3)) | quote }}
{{- end }}
{{- end }}

{{/*
The container's environment: only what the operator chose, and the pod name as the writer's
folder. The image sets LISTEN_ADDR, DRAIN_PERIOD and LOG_DIR (where the volume is mounted); the
binary owns every other default.
*/}}
{{- define "data-api.env" -}}
{{- $c := .Values.config }}
# The pod name (<statefulset>-<ordinal>) is the writer's folder under LOG_DIR: replicas never
# share a file, even on a shared volume.
- name: INSTANCE_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- include "data-api.envVar" (list "SIMULATED_LATENCY_MS" $c.simulatedLatencyMs) }}
{{- include "data-api.envVar" (list "LOG_SEGMENT_BYTES" $c.logSegmentBytes) }}
{{- include "data-api.envVar" (list "LOG_RETENTION_BYTES" $c.logRetentionBytes) }}
{{- include "data-api.envVar" (list "LOG_FORMAT_VERSION" $c.logFormatVersion) }}
{{- include "data-api.envVar" (list "REQUEST_TIMEOUT" $c.requestTimeout) }}
{{- include "data-api.envVar" (list "DRAIN_PERIOD" $c.drainPeriodSeconds "s") }}
{{- include "data-api.envVar" (list "SHUTDOWN_TIMEOUT" $c.shutdownTimeoutSeconds "s") }}
{{- include "data-api.envVar" (list "RUST_LOG" $c.rustLog) }}
{{- with .Values.persistence.shared }}
{{- if .enabled }}
{{- /* Orphan retention on the shared claim (null: the binary's default). */}}
{{- include "data-api.envVar" (list "LOG_ORPHAN_RETENTION" .orphanRetention) }}
{{- include "data-api.envVar" (list "LOG_SHARED_RETENTION_BYTES" .retentionBytes) }}
{{- include "data-api.envVar" (list "LOG_ORPHAN_SWEEP_INTERVAL" .orphanSweepInterval) }}
{{- end }}
{{- end }}
{{- with .Values.apiTokensSecretName }}
- name: API_TOKENS_FILE
  value: {{ printf "/var/run/secrets/abn-stack/api-tokens/%s" $.Values.apiTokensSecretKey | quote }}
{{- end }}
{{- /* Deprecated map form (chart 0.1.0), still rendered; extraEnv is the list form. */}}
{{- include "abn-common.envVars" (dict "env" $c.extraEnv "root" $) }}
{{- end }}

{{/*
What the StatefulSet's container and the umbrella's config-check hook Job share, from the shared
container template (abn-common.container) so the check sees exactly the environment and files the
pods get: image, security context, resources, env (with extraEnv), envFrom, volume mounts (the
check Job mounts a scratch volume as `data`: data-api.checkVolumes).
*/}}
{{- define "data-api.containerBase" -}}
{{- include "abn-common.container" (dict "root" . "values" .Values "image" (include "data-api.image" .)
      "pullPolicy" .Values.image.pullPolicy "securityContext" .Values.securityContext
      "resources" .Values.resources "env" (include "data-api.env" .) "mounts" (include "data-api.mounts" .)) }}
{{- end }}

{{/* The container's own mounts: the records volume at the image's LOG_DIR. */}}
{{- define "data-api.mounts" -}}
- name: data
  mountPath: /var/data/logs
{{- include "data-api.tokenMounts" . }}
{{- end }}

{{/* The config-check Job's stand-in for the records volume: empty, never the pods' claims. */}}
{{- define "data-api.checkVolumes" -}}
- name: data
  emptyDir:
    sizeLimit: 16Mi
{{- include "data-api.tokenVolumes" . }}
{{- end }}

{{/* The StatefulSet's own pod fields (abn-common.podSpec adds the shared ones). */}}
{{- define "data-api.podFields" -}}
serviceAccountName: {{ include "data-api.serviceAccountName" . }}
automountServiceAccountToken: false
enableServiceLinks: false
terminationGracePeriodSeconds: {{ include "data-api.terminationGracePeriodSeconds" . }}
{{- end }}

{{/* The StatefulSet's container: the shared base, its port and probes. */}}
{{- define "data-api.container" -}}
- name: data-api
  {{- include "data-api.containerBase" . | nindent 2 }}
  ports:
    # The port the image listens on (its LISTEN_ADDR); service.port is the Service's own.
    - name: http
      containerPort: 5001
      protocol: TCP
  {{- include "abn-common.probes" .Values.probes | trim | nindent 2 }}
{{- end }}

{{/* The pod's own volumes: the records volume unless it comes from volumeClaimTemplates. */}}
{{- define "data-api.volumes" -}}
{{- if ne (include "data-api.claimMode" .) "per-pod" }}
- name: data
  {{- if .Values.persistence.shared.enabled }}
  # Shared mode: every replica on this one ReadWriteMany claim.
  persistentVolumeClaim:
    claimName: {{ include "data-api.sharedClaimName" . }}
  {{- else if .Values.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ .Values.persistence.existingClaim }}
  {{- else }}
  # Persistence off: records live as long as the pod (tests and throwaway clusters only).
  emptyDir:
    sizeLimit: {{ .Values.persistence.size | quote }}
  {{- end }}
{{- end }}
{{- include "data-api.tokenVolumes" . }}
{{- end }}

{{/*
The callers' tokens (apiTokensSecretName): the Secret's whole directory read-only, 0440
(root:<fsGroup> as the kubelet applies it), never a subPath, so a changed Secret reaches the
running pod and is reloaded live. Empty without the Secret.
*/}}
{{- define "data-api.tokenVolumes" -}}
{{- with .Values.apiTokensSecretName }}
- name: api-tokens
  secret:
    secretName: {{ . }}
    # 0440
    defaultMode: 288
{{- end }}
{{- end }}

{{- define "data-api.tokenMounts" -}}
{{- if .Values.apiTokensSecretName }}
- name: api-tokens
  mountPath: /var/run/secrets/abn-stack/api-tokens
  readOnly: true
{{- end }}
{{- end }}

{{/* Headless Service that gives StatefulSet pods their stable DNS names. */}}
{{- define "data-api.headlessName" -}}
{{- printf "%s-headless" (include "data-api.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The backup CronJob (backup.enabled) and the claim its copies go to. */}}
{{- define "data-api.backupName" -}}
{{- printf "%s-backup" (include "data-api.fullname" .) | trunc 52 | trimSuffix "-" }}
{{- end }}

{{- define "data-api.backupClaimName" -}}
{{- .Values.backup.claim.existingClaim | default (printf "%s-backup" (include "data-api.fullname" .) | trunc 63 | trimSuffix "-") }}
{{- end }}

{{/* The backup pod's volumes: the records claim read-only, the copies' claim. */}}
{{- define "data-api.backupVolumes" -}}
- name: data
  persistentVolumeClaim:
    claimName: {{ ternary (include "data-api.sharedClaimName" .) .Values.persistence.existingClaim .Values.persistence.shared.enabled }}
    readOnly: true
- name: backup
  persistentVolumeClaim:
    claimName: {{ include "data-api.backupClaimName" . }}
{{- end }}

{{/* The backup container: the shared base (image, hardening, extraEnv), its own args and mounts. */}}
{{- define "data-api.backupContainer" -}}
- name: backup
  {{- include "abn-common.container" (dict "root" . "values" .Values "image" (include "data-api.image" .)
        "pullPolicy" .Values.image.pullPolicy "securityContext" .Values.securityContext
        "resources" .Values.resources
        "mounts" "- name: data\n  mountPath: /var/data/logs\n  readOnly: true\n- name: backup\n  mountPath: /var/data/backup") | nindent 2 }}
  args: [backup, --into, /var/data/backup, --keep, {{ .Values.backup.retention | quote }}]
{{- end }}

{{/*
The backup's labels: another app.kubernetes.io/name, so the Service, the PDB and the StatefulSet
never select a backup pod (it serves nothing).
*/}}
{{- define "data-api.backupLabels" -}}
helm.sh/chart: {{ include "data-api.chart" . }}
app.kubernetes.io/name: {{ printf "%s-backup" (include "data-api.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: backup
app.kubernetes.io/part-of: abn-stack
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with (include "abn-common.commonLabels" .Values) }}
{{ . }}
{{- end }}
{{- end }}
