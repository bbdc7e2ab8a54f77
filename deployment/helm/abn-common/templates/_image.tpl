{{/*
An image reference, as the Bitnami charts build it: [registry/]repository, then @digest when one
is set (a digest names exact bytes, so it wins over the tag), else :tag (default: the chart's
appVersion). The registry is the image's own, else global.imageRegistry, else none.
Call with (dict "image" .Values.image "global" .Values.global "chart" .Chart).
*/}}
{{- define "abn-common.image" -}}
{{- $global := .global | default dict }}
{{- $registry := .image.registry | default $global.imageRegistry | default "" }}
{{- $name := .image.repository }}
{{- if $registry }}
{{- $name = printf "%s/%s" (trimSuffix "/" $registry) .image.repository }}
{{- end }}
{{- if .image.digest }}
{{- printf "%s@%s" $name .image.digest }}
{{- else }}
{{- printf "%s:%s" $name (.image.tag | default .chart.AppVersion | toString) }}
{{- end }}
{{- end }}

{{/*
imagePullSecrets of a pod: global.imagePullSecrets, then the workload's own, each a name or a
{name: ...}, without repeats. Empty when there is none.
Call with (dict "global" .Values.global "secrets" .Values.imagePullSecrets).
*/}}
{{- define "abn-common.imagePullSecrets" -}}
{{- $global := .global | default dict }}
{{- $names := list }}
{{- range concat ($global.imagePullSecrets | default list) (.secrets | default list) }}
{{- if kindIs "string" . }}
{{- $names = append $names . }}
{{- else }}
{{- $names = append $names .name }}
{{- end }}
{{- end }}
{{- range $names | uniq }}
- name: {{ . }}
{{- end }}
{{- end }}

{{/*
The checkov.io/skip annotations of a workload whose images are loaded into the cluster: adds them
to the dict given. CKV_K8S_43 (image by digest) only while an image is referenced by tag; the
pull policy stays IfNotPresent (a local image must not be pulled).
Call with (dict "annotations" $dict "images" (list .Values.image ...)).
*/}}
{{- define "abn-common.imageSkips" -}}
{{- $byTag := false }}
{{- range .images }}{{ if not .digest }}{{ $byTag = true }}{{ end }}{{ end }}
{{- if $byTag }}
{{- $_ := set .annotations "checkov.io/skip1" "CKV_K8S_43=Images are referenced by tag unless image.digest is set (local images have no registry digest); set the digest to pin one" }}
{{- end }}
{{- $_ := set .annotations "checkov.io/skip2" "CKV_K8S_15=pullPolicy Always would try a registry the cluster may not have; IfNotPresent is the default, set image.pullPolicy to change it" }}
{{- end }}

{{/*
The checkov.io/skip3 (CKV_K8S_35, Secrets as files) of a workload whose operator chose to read a
Secret into the environment (extraEnv secretKeyRef or extraEnvFrom secretRef); adds it to the dict
given, or nothing. Call with (dict "annotations" $dict "values" (list <workload values> ...)).
*/}}
{{- define "abn-common.secretEnvSkip" -}}
{{- $fromSecret := false }}
{{- range .values }}
{{- if kindIs "slice" .extraEnv }}
{{- range .extraEnv }}{{ if and .valueFrom .valueFrom.secretKeyRef }}{{ $fromSecret = true }}{{ end }}{{ end }}
{{- end }}
{{- range .extraEnvFrom }}{{ if .secretRef }}{{ $fromSecret = true }}{{ end }}{{ end }}
{{- end }}
{{- if $fromSecret }}
{{- $_ := set .annotations "checkov.io/skip3" "CKV_K8S_35=extraEnv or extraEnvFrom reads a Secret into the environment, as the operator chose; the chart's own keys are mounted as files" }}
{{- end }}
{{- end }}
