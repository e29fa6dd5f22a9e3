{{/* The name of the DaemonSet; other objects add a suffix. "weir" for a release named weir. */}}
{{- define "weir.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "weir.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "weir.selectorLabels" -}}
app.kubernetes.io/name: {{ include "weir.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "weir.labels" -}}
{{ include "weir.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "weir.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Where the agent sees the host's CNI configuration directory. */}}
{{- define "weir.cniConfMount" -}}
/host{{ .Values.cni.confDir }}
{{- end -}}

{{- define "weir.cniBinMount" -}}
/host{{ .Values.cni.binDir }}
{{- end -}}

{{- define "weir.cgroupMount" -}}
/run/weir/cgroupv2
{{- end -}}

{{/*
`helm upgrade --reuse-values` renders with the previous release's values in place of this chart's
defaults, so a value added since may be missing: the helpers below read such values with the default
values.yaml gives them.
*/}}

{{/* agent.kubeProxyHealthzBindAddress; missing: the agent's default, which values.yaml repeats. */}}
{{- define "weir.kubeProxyHealthzAddress" -}}
{{- if hasKey .Values.agent "kubeProxyHealthzBindAddress" -}}
{{- .Values.agent.kubeProxyHealthzBindAddress -}}
{{- else -}}
0.0.0.0:10256
{{- end -}}
{{- end -}}

{{/* The port of kube-proxy's health check ("host:port"); empty when it is not served. */}}
{{- define "weir.kubeProxyHealthzPort" -}}
{{- regexFind "[0-9]+$" (include "weir.kubeProxyHealthzAddress" .) -}}
{{- end -}}

{{/* prometheus.serviceMonitor, as a dict (empty when missing). */}}
{{- define "weir.serviceMonitor" -}}
{{- dig "serviceMonitor" dict (.Values.prometheus | default dict) | toJson -}}
{{- end -}}

{{/* "true" when the pods carry Prometheus scrape annotations, else empty. */}}
{{- define "weir.scrapeAnnotations" -}}
{{- if and (dig "annotations" true (.Values.prometheus | default dict)) .Values.agent.healthPort -}}
true
{{- end -}}
{{- end -}}

{{/* "true" when NetworkPolicy is enforced, else empty. Missing (an upgrade with --reuse-values from a
chart before it): off, so that an upgrade does not start isolating pods unasked. */}}
{{- define "weir.policyEnabled" -}}
{{- if dig "enabled" false (.Values.policy | default dict) -}}
true
{{- end -}}
{{- end -}}
