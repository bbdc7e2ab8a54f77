{{/*
The one pod template of every abn-stack workload (backend-api, data-api, the health-check in both
modes, the log-provider, the config-check hook Jobs and the helm test pod). Each extension point
is read here, from the workload's values, so every workload offers the same keys:
  podLabels, podAnnotations                     (abn-common.podMetadata)
  extraEnv, extraEnvFrom, extraVolumeMounts     (abn-common.container: the main container)
  imagePullSecrets (with global.imagePullSecrets), priorityClassName, extraVolumes,
  initContainers, extraContainers, nodeSelector, affinity, tolerations,
  topologySpreadConstraints                     (abn-common.podSpec)
Lists the operator writes (extraEnv, extraVolumes, initContainers, extraContainers, ...) go
through `tpl`, so they may name the release ({{ .Release.Name }}).
*/}}

{{/*
Pod labels and annotations: the workload's labels (YAML text), then podLabels; podAnnotations,
then the workload's own (e.g. a checksum), which win.
Call with (dict "labels" <text> "values" <workload values> "annotations" (dict ...)).
*/}}
{{- define "abn-common.podMetadata" -}}
labels:
  {{- .labels | nindent 2 }}
  {{- with .values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with merge (deepCopy (.annotations | default dict)) (.values.podAnnotations | default dict) }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
extraEnv as EnvVar list items: a list of Kubernetes EnvVar (value or valueFrom), or the older
map form {NAME: value} (plain values, in name order). Through tpl.
Call with (dict "env" <list or map> "root" $).
*/}}
{{- define "abn-common.envVars" -}}
{{- if kindIs "map" .env }}
{{- range $name, $value := .env }}
- name: {{ $name }}
  value: {{ tpl (toString $value) $.root | quote }}
{{- end }}
{{- else if .env }}
{{- tpl (toYaml .env) .root }}
{{- end }}
{{- end }}

{{/*
OpenTelemetry traces (global.otel), on every main container of every chart once
global.otel.endpoint is set; nothing at all without it (the binaries export nothing then).
OTEL_EXPORTER_OTLP_ENDPOINT, the sampler only where set (the binary's parentbased_always_on
otherwise), and OTEL_RESOURCE_ATTRIBUTES with what the OpenTelemetry Kubernetes conventions
expect of a pod: k8s.pod.name and k8s.namespace.name (from the downward API, through $(VAR)
expansion of the two variables before it), and the release's global.environment as
deployment.environment.name (current semantic conventions) and deployment.environment (its
older name, which many dashboards still query). service.name is each binary's own name.
Call with the chart's root context ($).
*/}}
{{- define "abn-common.otelEnv" -}}
{{- $otel := (.Values.global | default dict).otel | default dict }}
{{- with $otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- with $otel.sampler }}
- name: OTEL_TRACES_SAMPLER
  value: {{ . | quote }}
{{- end }}
{{- if not (kindIs "invalid" $otel.samplerArg) }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ toString $otel.samplerArg | quote }}
{{- end }}
- name: OTEL_K8S_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: OTEL_K8S_NAMESPACE_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- $attributes := list "k8s.pod.name=$(OTEL_K8S_POD_NAME)" "k8s.namespace.name=$(OTEL_K8S_NAMESPACE_NAME)" }}
{{- with $.Values.global.environment }}
{{- $attributes = concat $attributes (list (printf "deployment.environment.name=%s" .) (printf "deployment.environment=%s" .)) }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $attributes | quote }}
{{- end }}
{{- end }}

{{/*
The main container's body (everything but `name`, `args`, ports and probes): what the workload
and its config-check Job share, so the check sees exactly the pod's environment and files.
Call with (dict "root" $ "values" <workload values> "image" <ref> "pullPolicy" <policy>
  "securityContext" <dict> "resources" <dict> "env" <EnvVar items text> "mounts" <VolumeMount
  items text>). The workload's own env comes first, then global.otel's (abn-common.otelEnv);
  extraEnv after them (a later name wins, as in
Kubernetes), so an operator can override a chart-set variable but never drops it silently.
*/}}
{{- define "abn-common.container" -}}
{{- $v := .values }}
{{- $env := print (.env | default "") "\n" (include "abn-common.otelEnv" .root) "\n" (include "abn-common.envVars" (dict "env" $v.extraEnv "root" .root)) | trim }}
{{- $mounts := print (.mounts | default "") "\n" (ternary (tpl (toYaml $v.extraVolumeMounts) .root) "" (not (empty $v.extraVolumeMounts))) | trim -}}
image: {{ .image | quote }}
imagePullPolicy: {{ .pullPolicy }}
securityContext:
  {{- toYaml .securityContext | nindent 2 }}
resources:
  {{- toYaml .resources | nindent 2 }}
{{- with $env }}
env:
  {{- . | nindent 2 }}
{{- end }}
{{- with $v.extraEnvFrom }}
envFrom:
  {{- tpl (toYaml .) $.root | nindent 2 }}
{{- end }}
{{- with $mounts }}
volumeMounts:
  {{- . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Operator-written containers (initContainers, extraContainers) through tpl; one without a
securityContext gets the workload container's, so a sidecar is as hardened as the service unless
the operator says otherwise.
Call with (dict "containers" <list> "securityContext" <dict> "root" $).
*/}}
{{- define "abn-common.extraContainers" -}}
{{- $hardened := list }}
{{- range .containers }}
{{- $c := deepCopy . }}
{{- if not (hasKey $c "securityContext") }}
{{- $_ := set $c "securityContext" $.securityContext }}
{{- end }}
{{- $hardened = append $hardened $c }}
{{- end }}
{{- with $hardened }}
{{- tpl (toYaml .) $.root }}
{{- end }}
{{- end }}

{{/*
A pod's spec.
Call with (dict "root" $ "values" <workload values> "spec" <the workload's own pod fields, text>
  "podSecurityContext" <dict> "securityContext" <the main container's, for operator containers>
  "volumes" <Volume items text> "containers" <Container items text> "sidecars" <bool>
  "initContainers" <the workload's own init containers, Container items text; optional>).
The workload's own init containers run before the operator's initContainers.
"sidecars" false (the run-once pods: config checks, helm test, CronJob runs) leaves
extraContainers out, since a Job whose sidecar never exits never completes; such pods take
native sidecars as initContainers with restartPolicy: Always (Kubernetes 1.29+) instead.
*/}}
{{- define "abn-common.podSpec" -}}
{{- $v := .values }}
{{- $global := .root.Values.global | default dict }}
{{- with .spec | trim }}
{{- . }}
{{- end }}
{{- with (include "abn-common.imagePullSecrets" (dict "global" $global "secrets" $v.imagePullSecrets) | trim) }}
imagePullSecrets:
  {{- . | nindent 2 }}
{{- end }}
{{- with $v.priorityClassName }}
priorityClassName: {{ . | quote }}
{{- end }}
securityContext:
  {{- toYaml .podSecurityContext | nindent 2 }}
{{- $volumes := print (.volumes | default "") "\n" (ternary (tpl (toYaml $v.extraVolumes) .root) "" (not (empty $v.extraVolumes))) | trim }}
{{- with $volumes }}
volumes:
  {{- . | nindent 2 }}
{{- end }}
{{- $inits := print (.initContainers | default "") "\n" (include "abn-common.extraContainers" (dict "containers" $v.initContainers "securityContext" .securityContext "root" .root)) | trim }}
{{- with $inits }}
initContainers:
  {{- . | nindent 2 }}
{{- end }}
containers:
  {{- .containers | trim | nindent 2 }}
  {{- if .sidecars }}
  {{- with (include "abn-common.extraContainers" (dict "containers" $v.extraContainers "securityContext" .securityContext "root" .root) | trim) }}
  {{- . | nindent 2 }}
  {{- end }}
  {{- end }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity:
  {{- tpl (toYaml .) $.root | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- tpl (toYaml .) $.root | nindent 2 }}
{{- end }}
{{- end }}

{{/*
startupProbe, livenessProbe and readinessProbe from a workload's `probes` values (httpGet on the
probe's port, default the container port named http). Call with `include ... | trim`.
*/}}
{{- define "abn-common.probes" -}}
{{- range $kind := list "startup" "liveness" "readiness" }}
{{- $p := index $ $kind }}
{{ $kind }}Probe:
  httpGet:
    path: {{ $p.path }}
    port: {{ $p.port | default "http" }}
  periodSeconds: {{ $p.periodSeconds }}
  timeoutSeconds: {{ $p.timeoutSeconds }}
  failureThreshold: {{ $p.failureThreshold }}
{{- end }}
{{- end }}
