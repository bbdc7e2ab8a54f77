{{- define "abn-stack.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "abn-stack.fullname" -}}
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

{{- define "abn-stack.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of a component this chart owns; call with (dict "root" $ "component" "health-check"). */}}
{{- define "abn-stack.selectorLabels" -}}
app.kubernetes.io/name: {{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end }}

{{- define "abn-stack.labels" -}}
helm.sh/chart: {{ include "abn-stack.chart" .root }}
{{ include "abn-stack.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: abn-stack
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- with (include "abn-common.commonLabels" .root.Values) }}
{{ . }}
{{- end }}
{{- end }}

{{/*
Names of the components this chart owns: <release>-<component>, like the subcharts' defaults, so
values files can name them (e.g. the dev EXTERNAL_LOGS_URL). CronJob names stay within 52
characters (its Jobs add 11).
*/}}
{{- define "abn-stack.healthCheckName" -}}
{{- printf "%s-health-check" (.Release.Name | trunc 39 | trimSuffix "-") }}
{{- end }}

{{- define "abn-stack.logProviderName" -}}
{{- printf "%s-log-provider" (.Release.Name | trunc 50 | trimSuffix "-") }}
{{- end }}

{{/*
The log-provider's TLS Secret (tls.crt, tls.key, ca.crt): logProvider.tls.existingSecret (e.g.
cert-manager's Certificate's), else <release>-log-provider-tls, which the chart makes.
*/}}
{{- define "abn-stack.logProviderTlsSecretName" -}}
{{- default (printf "%s-tls" (include "abn-stack.logProviderName" .)) .Values.logProvider.tls.existingSecret }}
{{- end }}

{{/*
Where a client of the log-provider finds its CA (ca.crt of the TLS Secret, never the key), and
the volume that holds only that file; empty without the log-provider.
*/}}
{{- define "abn-stack.logProviderCaDir" -}}
/var/run/secrets/abn-stack/log-provider-ca
{{- end }}

{{- define "abn-stack.logProviderCaVolumes" -}}
{{- if .Values.logProvider.enabled }}
- name: log-provider-ca
  secret:
    secretName: {{ include "abn-stack.logProviderTlsSecretName" . }}
    items:
      - key: ca.crt
        path: ca.crt
    # 0444: a CA certificate is public.
    defaultMode: 292
{{- end }}
{{- end }}

{{/*
Names and labels of the subcharts' objects, computed by the subcharts' own named templates (named
templates are global) with a context built from this chart's view of their values.
*/}}
{{- define "abn-stack.backendApiName" -}}
{{- include "backend-api.fullname" (dict "Values" (index .Values "backend-api") "Release" .Release "Chart" (dict "Name" "backend-api")) }}
{{- end }}

{{- define "abn-stack.dataApiName" -}}
{{- include "data-api.fullname" (dict "Values" (index .Values "data-api") "Release" .Release "Chart" (dict "Name" "data-api")) }}
{{- end }}

{{- define "abn-stack.backendApiSelectorLabels" -}}
{{- include "backend-api.selectorLabels" (dict "Values" (index .Values "backend-api") "Release" .Release "Chart" (dict "Name" "backend-api")) }}
{{- end }}

{{- define "abn-stack.dataApiSelectorLabels" -}}
{{- include "data-api.selectorLabels" (dict "Values" (index .Values "data-api") "Release" .Release "Chart" (dict "Name" "data-api")) }}
{{- end }}

{{/*
Health-check targets (name=url, one per line): every service of this release by its own Service
name and port, then healthCheck.extraTargets.
*/}}
{{- define "abn-stack.healthCheckTargets" -}}
{{- $ns := .Release.Namespace -}}
backend-api=http://{{ include "abn-stack.backendApiName" . }}.{{ $ns }}.svc:{{ (index .Values "backend-api").service.port }}/readyz
data-api=http://{{ include "abn-stack.dataApiName" . }}.{{ $ns }}.svc:{{ (index .Values "data-api").service.port }}/readyz
{{- if .Values.logProvider.enabled }}
log-provider=https://{{ include "abn-stack.logProviderName" . }}.{{ $ns }}.svc:{{ .Values.logProvider.port }}/readyz
{{- end }}
{{- range .Values.healthCheck.extraTargets }}
{{ . }}
{{- end }}
{{- end }}

{{/*
Arguments of a one-shot health-check run over this release; call with (dict "root" $) or, to send
the history elsewhere than the image's HEALTHCHECK_OUTPUT, (dict "root" $ "output" "-"). With
"serve" true: the arguments of `health-check serve` (healthCheck.mode serve) instead.
*/}}
{{- define "abn-stack.healthCheckArgs" -}}
{{- if .serve }}
- serve
{{- with .root.Values.healthCheck.interval }}
- --interval
- {{ . | quote }}
{{- end }}
{{- else }}
- --once
{{- end }}
{{- with .root.Values.healthCheck.timeout }}
- --timeout
- {{ . | quote }}
{{- end }}
{{- with .output }}
- --output
- {{ . | quote }}
{{- end }}
{{- range (include "abn-stack.healthCheckTargets" .root | trim | splitList "\n") }}
- --target
- {{ . | quote }}
{{- end }}
{{- end }}

{{/*
What a health-check container shares with its config-check Job and the helm test pod, from the
shared container template: image, security context, resources, the history rotation when the
operator set it (the image sets HEALTHCHECK_OUTPUT on the volume; the binary owns every other
default), extraEnv, extraEnvFrom and extraVolumeMounts. With "history" true (the CronJob and the
Deployment) also the history volume's mount.
With "alerting" true and healthCheck.alerting.receivers set: HEALTHCHECK_CONFIG and the mounts of
the alerting config and the receivers' URL files (the pod needs abn-stack.healthCheckAlertingVolumes).
Call with (dict "root" $ "history" <bool> "alerting" <bool>).
*/}}
{{- define "abn-stack.healthCheckContainerBase" -}}
{{- $h := .root.Values.healthCheck }}
{{- /* backend-api.envVar: the subchart's helper (named templates are global in a release). */}}
{{- $env := print (include "backend-api.envVar" (list "HEALTHCHECK_OUTPUT_MAX_BYTES" $h.history.maxBytes)) (include "backend-api.envVar" (list "HEALTHCHECK_OUTPUT_KEEP_FILES" $h.history.keepFiles)) }}
{{- $mounts := "" }}
{{- if .history }}
{{- $mounts = "# The image's HEALTHCHECK_OUTPUT folder.\n- name: history\n  mountPath: /var/data/health" }}
{{- end }}
{{- if .root.Values.logProvider.enabled }}
{{- /* The log-provider serves HTTPS with the release's CA: trusted through SSL_CERT_FILE, which
adds to the public roots built into the image (the scratch image has no system store). */}}
{{- $env = print $env (include "backend-api.envVar" (list "SSL_CERT_FILE" (printf "%s/ca.crt" (include "abn-stack.logProviderCaDir" .root)))) }}
{{- $mounts = print $mounts (printf "\n- name: log-provider-ca\n  mountPath: %s\n  readOnly: true" (include "abn-stack.logProviderCaDir" .root)) }}
{{- end }}
{{- if and .alerting $h.alerting.receivers }}
{{- $env = print $env (include "backend-api.envVar" (list "HEALTHCHECK_CONFIG" "/etc/health-check/config.yaml")) }}
{{- $mounts = print $mounts "\n- name: alerting-config\n  mountPath: /etc/health-check\n  readOnly: true" }}
{{- range $h.alerting.receivers }}
{{- $mounts = print $mounts (printf "\n- name: alerting-url-%s\n  mountPath: /var/run/secrets/abn-stack/alerting/%s\n  readOnly: true" .name .name) }}
{{- end }}
{{- end }}
{{- include "abn-common.container" (dict "root" .root "values" $h "image" (include "abn-stack.image" (dict "root" .root "image" $h.image))
      "pullPolicy" $h.image.pullPolicy "securityContext" .root.Values.securityContext "resources" $h.resources
      "env" $env "mounts" $mounts) }}
{{- end }}

{{/*
The health-check pod's own volumes: the history claim (both modes keep it on the same claim).
*/}}
{{- define "abn-stack.healthCheckVolumes" -}}
{{- $h := .Values.healthCheck }}
- name: history
  {{- if $h.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ default (include "abn-stack.healthCheckName" .) $h.persistence.existingClaim }}
  {{- else }}
  emptyDir:
    sizeLimit: {{ $h.persistence.size | quote }}
  {{- end }}
{{ include "abn-stack.healthCheckAlertingVolumes" . }}
{{ include "abn-stack.logProviderCaVolumes" . }}
{{- end }}

{{/*
With healthCheck.alerting.receivers set: the alerting config (the chart's ConfigMap) and each
receiver's URL from its existing Secret (only that key, as the file `url`). The config-check Job
calls abn-stack.healthCheckAlertingCheckVolumes instead: the same, from the hook copy of the
ConfigMap (a pre-install hook runs before the release's own ConfigMap exists).
*/}}
{{- define "abn-stack.healthCheckAlertingVolumes" -}}
{{- include "abn-stack.healthCheckAlertingVolumesOf" (dict "root" . "configMap" (printf "%s-alerting" (include "abn-stack.healthCheckName" .))) }}
{{- end }}

{{- define "abn-stack.healthCheckAlertingCheckVolumes" -}}
{{- include "abn-stack.healthCheckAlertingVolumesOf" (dict "root" . "configMap" (printf "%s-alerting-check" (include "abn-stack.healthCheckName" .))) }}
{{- end }}

{{- define "abn-stack.healthCheckAlertingVolumesOf" -}}
{{- $configMap := .configMap }}
{{- with .root }}
{{- range .Values.healthCheck.alerting.receivers }}
- name: alerting-url-{{ .name }}
  secret:
    secretName: {{ .urlSecret.name }}
    items:
      - key: {{ .urlSecret.key }}
        path: url
    # 0440: readable by the pod's group (fsGroup), like the integration key.
    defaultMode: 288
{{- end }}
{{- if .Values.healthCheck.alerting.receivers }}
- name: alerting-config
  configMap:
    name: {{ $configMap }}
    # 0444
    defaultMode: 292
{{- end }}
{{- end }}
{{- end }}

{{/*
Pod annotations (as a dict) that roll the health-check when its alerting config changes.
*/}}
{{- define "abn-stack.healthCheckAlertingChecksum" -}}
{{- if .Values.healthCheck.alerting.receivers }}
{{- dict "checksum/alerting-config" (include "abn-stack.healthCheckAlertingConfig" . | sha256sum) | toYaml }}
{{- end }}
{{- end }}

{{/*
The YAML of HEALTHCHECK_CONFIG with healthCheck.alerting: no targets of its own (the arguments
name them), only what the operator set (the binary owns every default), receivers by url_file.
*/}}
{{- define "abn-stack.healthCheckAlertingConfig" -}}
{{- $a := .Values.healthCheck.alerting }}
{{- $names := dict }}
{{- range $a.receivers }}
{{- if hasKey $names .name }}
{{- fail (printf "healthCheck.alerting.receivers: the name %q is used twice" .name) }}
{{- end }}
{{- $_ := set $names .name true }}
{{- end -}}
# Targets come from the arguments (--target); this file adds the alerting.
targets: []
alerting:
  {{- with $a.downAfter }}
  down_after: {{ . }}
  {{- end }}
  {{- with $a.upAfter }}
  up_after: {{ . }}
  {{- end }}
  {{- if or $a.delivery.attempts $a.delivery.attemptTimeout $a.delivery.giveUpAfter }}
  delivery:
    {{- with $a.delivery.attempts }}
    attempts: {{ . }}
    {{- end }}
    {{- with $a.delivery.attemptTimeout }}
    attempt_timeout: {{ . | quote }}
    {{- end }}
    {{- with $a.delivery.giveUpAfter }}
    give_up_after: {{ . | quote }}
    {{- end }}
  {{- end }}
  receivers:
    {{- range $a.receivers }}
    - name: {{ .name | quote }}
      type: {{ .type }}
      url_file: /var/run/secrets/abn-stack/alerting/{{ .name }}/url
    {{- end }}
{{- end }}

{{/*
The log-provider's container as its Deployment and config-check Job share it. It accepts the key
of the backend's integration Secret, so the two always agree. The image sets LISTEN_ADDR and
DRAIN_PERIOD.
*/}}
{{- define "abn-stack.logProviderContainerBase" -}}
{{- $p := .Values.logProvider }}
{{- $backend := index .Values "backend-api" }}
{{- $env := include "backend-api.envVar" (list "RUST_LOG" $p.rustLog) }}
{{- $mounts := "" }}
{{- if eq $backend.integrationKeyDelivery "env" }}
{{- $env = print $env "\n- name: PROVIDER_KEY\n  valueFrom:\n    secretKeyRef:\n      name: " $backend.integrationKeySecretName "\n      key: " $backend.integrationKeySecretKey }}
{{- else }}
{{- /* The same Secret mounted the same way as backend-api's: a rotation reaches both live. */}}
{{- $env = print $env "\n- name: PROVIDER_KEY_FILE\n  value: " (printf "/var/run/secrets/abn-stack/integration-key/%s" $backend.integrationKeySecretKey | quote) }}
{{- $mounts = "- name: integration-key\n  mountPath: /var/run/secrets/abn-stack/integration-key\n  readOnly: true" }}
{{- end }}
{{- /* HTTPS from the TLS Secret's directory (never a subPath, so a renewal reaches the pod). */}}
{{- $env = print $env "\n- name: TLS_CERT_FILE\n  value: \"/var/run/secrets/abn-stack/tls/tls.crt\"\n- name: TLS_KEY_FILE\n  value: \"/var/run/secrets/abn-stack/tls/tls.key\"" }}
{{- $mounts = print $mounts (ternary "" "\n" (eq $mounts "")) "- name: tls\n  mountPath: /var/run/secrets/abn-stack/tls\n  readOnly: true" }}
{{- include "abn-common.container" (dict "root" . "values" $p "image" (include "abn-stack.image" (dict "root" . "image" $p.image))
      "pullPolicy" $p.image.pullPolicy "securityContext" .Values.securityContext "resources" $p.resources
      "env" $env "mounts" $mounts) }}
{{- end }}

{{/*
The log-provider pod's volumes: its TLS Secret, and backend-api's integration Secret in file
delivery.
*/}}
{{- define "abn-stack.logProviderVolumes" -}}
{{- $backend := index .Values "backend-api" }}
- name: tls
  secret:
    secretName: {{ include "abn-stack.logProviderTlsSecretName" . }}
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
    # 0440
    defaultMode: 288
{{- if eq $backend.integrationKeyDelivery "file" }}
- name: integration-key
  secret:
    secretName: {{ $backend.integrationKeySecretName }}
    # 0440
    defaultMode: 288
{{- end }}
{{- end }}

{{- define "abn-stack.image" -}}
{{- include "abn-common.image" (dict "image" .image "global" .root.Values.global "chart" .root.Chart) }}
{{- end }}

{{/*
A health-check container (CronJob run, serve Deployment, helm test pod): the shared base with the
history mount (unless "history" is false), the alerting config (unless "alerting" is false), and
its arguments.
Call with (dict "root" $ "args" <args text> "history" <bool, default true> "alerting" <bool,
default true> "serve" <bool>).
*/}}
{{- define "abn-stack.healthCheckContainer" -}}
- name: health-check
  {{- include "abn-stack.healthCheckContainerBase" (dict "root" .root "history" (ternary .history true (hasKey . "history")) "alerting" (ternary .alerting true (hasKey . "alerting"))) | nindent 2 }}
  args:
    {{- .args | nindent 4 }}
  {{- if .serve }}
  ports:
    # The port the image listens on (its LISTEN_ADDR); healthCheck.service.port is the Service's.
    - name: http
      containerPort: 5003
      protocol: TCP
  startupProbe:
    httpGet:
      path: /healthz
      port: http
    periodSeconds: 2
    failureThreshold: 30
  livenessProbe:
    httpGet:
      path: /healthz
      port: http
    periodSeconds: 10
    timeoutSeconds: 2
  # Ready once a first run is in the history (the page has something to show).
  readinessProbe:
    httpGet:
      path: /readyz
      port: http
    periodSeconds: 5
    timeoutSeconds: 2
  {{- end }}
{{- end }}

{{/* The log-provider's container: the shared base, its port and probes. */}}
{{- define "abn-stack.logProviderContainer" -}}
- name: log-provider
  {{- include "abn-stack.logProviderContainerBase" . | nindent 2 }}
  ports:
    # The port the image listens on (its LISTEN_ADDR); logProvider.port is the Service's.
    - name: https
      containerPort: 5002
      protocol: TCP
  startupProbe:
    httpGet:
      path: /healthz
      port: https
      # The kubelet does not verify the certificate; backend-api and the health-check do.
      scheme: HTTPS
    periodSeconds: 2
    failureThreshold: 30
  livenessProbe:
    httpGet:
      path: /healthz
      port: https
      # The kubelet does not verify the certificate; backend-api and the health-check do.
      scheme: HTTPS
    periodSeconds: 10
    timeoutSeconds: 2
  readinessProbe:
    httpGet:
      path: /readyz
      port: https
      # The kubelet does not verify the certificate; backend-api and the health-check do.
      scheme: HTTPS
    periodSeconds: 5
    timeoutSeconds: 2
{{- end }}
