{{/* Name of the chart. */}}
{{- define "vpa.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of every object name. */}}
{{- define "vpa.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "vpa.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "vpa.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of a component: (dict "root" . "component" "recommender"). */}}
{{- define "vpa.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vpa.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Object name of a component. */}}
{{- define "vpa.componentName" -}}
{{- printf "%s-%s" (include "vpa.fullname" .root) .component -}}
{{- end -}}

{{/* Image of a component. */}}
{{- define "vpa.image" -}}
{{- printf "%s/vpa-%s:%s" .root.Values.image.repository .component (default .root.Chart.AppVersion .root.Values.image.tag) -}}
{{- end -}}

{{/* The webhook Service name. */}}
{{- define "vpa.webhookService" -}}
{{- printf "%s-webhook" (include "vpa.fullname" .) -}}
{{- end -}}

{{/* The TLS Secret of the webhook (certManager and secret modes). */}}
{{- define "vpa.tlsSecret" -}}
{{- if eq .Values.admissionController.certificates.mode "secret" -}}
{{- .Values.admissionController.certificates.secretName -}}
{{- else -}}
{{- printf "%s-admission-tls" (include "vpa.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Fails rendering on conflicting values. */}}
{{- define "vpa.validate" -}}
{{- $ac := .Values.admissionController -}}
{{- $mode := $ac.certificates.mode -}}
{{- if and $ac.enabled (eq $mode "generated") (gt (int $ac.replicas) 1) -}}
{{- fail "admissionController.certificates.mode=generated registers a CA per replica: set admissionController.replicas=1, or use certificates.mode=certManager or secret for more replicas" -}}
{{- end -}}
{{- if and $ac.enabled (eq $mode "secret") (not $ac.certificates.secretName) -}}
{{- fail "admissionController.certificates.mode=secret needs admissionController.certificates.secretName (a Secret with ca.crt, tls.crt and tls.key)" -}}
{{- end -}}
{{- if and $ac.enabled (eq $mode "secret") (not $ac.certificates.caBundle) -}}
{{- fail "admissionController.certificates.mode=secret needs admissionController.certificates.caBundle (the PEM CA that signed the Secret's certificate)" -}}
{{- end -}}
{{- if and (ne $mode "secret") (or $ac.certificates.secretName $ac.certificates.caBundle) -}}
{{- fail (printf "admissionController.certificates.secretName and caBundle are only used with certificates.mode=secret (mode is %s)" $mode) -}}
{{- end -}}
{{- if and (ne $mode "certManager") $ac.certificates.certManager.issuerRef.name -}}
{{- fail (printf "admissionController.certificates.certManager.issuerRef is only used with certificates.mode=certManager (mode is %s)" $mode) -}}
{{- end -}}
{{- range $arg := $ac.extraArgs -}}
{{- if and (ne $mode "generated") (hasPrefix "--register-webhook" $arg) -}}
{{- fail "admissionController.extraArgs: --register-webhook is decided by certificates.mode (generated: the controller registers the webhook; certManager/secret: the chart renders it)" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Common pod spec parts: (dict "root" . "c" .Values.<component>). */}}
{{- define "vpa.podCommon" -}}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
{{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
{{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- with .c.nodeSelector }}
nodeSelector:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- with .c.tolerations }}
tolerations:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- with .c.affinity }}
affinity:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Probes on the admin port. */}}
{{- define "vpa.probes" -}}
livenessProbe:
  httpGet:
    path: /healthz
    port: admin
  periodSeconds: 10
  failureThreshold: 6
readinessProbe:
  httpGet:
    path: /readyz
    port: admin
  periodSeconds: 5
{{- end -}}
