{{/* Name prefix of every resource: the release name unless fullnameOverride is set. */}}
{{- define "mlsecops.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{- define "mlsecops.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component: include with (list $ "mlflow"). */}}
{{- define "mlsecops.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ $root.Chart.Name }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* The image, by digest when one is given. */}}
{{- define "mlsecops.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}
{{- end -}}

{{/* Fails the render with a clear message when a value the schema cannot express is missing. */}}
{{- define "mlsecops.validate" -}}
{{- if eq .Values.image.tag "latest" -}}
{{- fail "image.tag must not be latest: name an immutable tag (or set image.digest)" -}}
{{- end -}}
{{- if and (eq .Values.signing.mode "kms") (not .Values.signing.kms.keyRef) -}}
{{- fail "signing.mode is kms: set signing.kms.keyRef to awskms:///alias/NAME (or a key id or ARN)" -}}
{{- end -}}
{{- if and (eq .Values.signing.mode "kms") (not .Values.signing.kms.roleArn) -}}
{{- fail "signing.mode is kms: set signing.kms.roleArn to the IAM role the checkpoint CronJob assumes (IRSA)" -}}
{{- end -}}
{{- end -}}

{{/* Pod-level fields shared by every pod of the chart. */}}
{{- define "mlsecops.podCommon" -}}
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Environment shared by the chart's Python processes: no telemetry, no .pyc writes, HOME on /tmp. */}}
{{- define "mlsecops.commonEnv" -}}
- name: HOME
  value: /tmp
- name: PYTHONDONTWRITEBYTECODE
  value: "1"
- name: MLFLOW_DISABLE_TELEMETRY
  value: "true"
- name: DO_NOT_TRACK
  value: "true"
{{- end -}}

{{/* AWS settings of a component: include with (dict "region" .. "endpoint" .. "credentialsSecret" ..). */}}
{{- define "mlsecops.awsEnv" -}}
{{- if .region }}
- name: AWS_REGION
  value: {{ .region | quote }}
{{- end }}
{{- if .endpoint }}
- name: AWS_ENDPOINT_URL_S3
  value: {{ .endpoint | quote }}
{{- end }}
{{- if .credentialsSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .credentialsSecret }}
      key: AWS_ACCESS_KEY_ID
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .credentialsSecret }}
      key: AWS_SECRET_ACCESS_KEY
{{- end }}
{{- end -}}

{{/* Egress every pod of the chart needs: DNS. */}}
{{- define "mlsecops.dnsEgress" -}}
- to:
    - namespaceSelector:
        matchLabels:
          {{- toYaml .Values.networkPolicy.dns.namespaceSelector | nindent 10 }}
      podSelector:
        matchLabels:
          {{- toYaml .Values.networkPolicy.dns.podSelector | nindent 10 }}
  ports:
    - {protocol: UDP, port: 53}
    - {protocol: TCP, port: 53}
{{- end -}}

{{- define "mlsecops.cidrEgress" -}}
- to:
    {{- range .cidrs }}
    - ipBlock:
        cidr: {{ . }}
        {{- with $.except }}
        except:
          {{- toYaml . | nindent 10 }}
        {{- end }}
    {{- end }}
  ports:
    - {protocol: TCP, port: {{ .port }}}
{{- end -}}

{{/*
checkov skips of a workload, each with its reason (checkov reads `checkov.io/skip<N>: ID=reason`
annotations of the rendered object). The digest skip appears only when no digest is set.
*/}}
{{- define "mlsecops.checkovSkips" -}}
checkov.io/skip1: "CKV_K8S_35=Secrets as env: mlflow server and the mlsecops CLI read their database URL (and AWS keys when no IRSA) from the environment only; the value never appears in the pod spec or process arguments"
{{- if not .Values.image.digest }}
checkov.io/skip2: "CKV_K8S_43=No digest in these values: a chart default cannot know the digest of your build; set image.digest (production values do)"
{{- end }}
{{- end -}}
