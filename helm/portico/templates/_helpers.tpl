{{/* Names and labels. */}}
{{- define "portico.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "portico.fullname" -}}
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

{{- define "portico.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "portico.selectorLabels" -}}
app.kubernetes.io/name: {{ include "portico.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "portico.labels" -}}
helm.sh/chart: {{ include "portico.chart" . }}
{{ include "portico.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "portico.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "portico.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* What runs the pods: LeaderWorkerSet (multiNode), StatefulSet or Deployment. */}}
{{- define "portico.workloadKind" -}}
{{- if .Values.multiNode.enabled }}LeaderWorkerSet{{ else if .Values.statefulSet.enabled }}StatefulSet{{ else }}Deployment{{ end }}
{{- end }}

{{- define "portico.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* The environment every portico container gets (leader, worker, single node). */}}
{{- define "portico.env" -}}
- name: NIM_CACHE_PATH
  value: {{ .Values.model.nimCache | quote }}
- name: HF_HOME
  value: {{ printf "%s/huggingface" .Values.model.nimCache | quote }}
- name: NIM_SERVER_PORT
  value: {{ .Values.model.openaiPort | quote }}
- name: NIM_JSONL_LOGGING
  value: {{ ternary "1" "0" .Values.model.jsonLogging | quote }}
- name: NIM_LOG_LEVEL
  value: {{ .Values.model.logLevel | quote }}
{{- if .Values.model.ngcAPISecret }}
- name: NGC_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.model.ngcAPISecret }}
      key: NGC_API_KEY
{{- end }}
{{- if .Values.model.hfTokenSecret }}
- name: HF_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.model.hfTokenSecret }}
      key: HF_TOKEN
{{- end }}
{{- if .Values.apiKeys.existingSecret }}
- name: NIM_API_KEYS_FILE
  value: {{ printf "/etc/portico/api-keys/%s" .Values.apiKeys.key | quote }}
{{- end }}
{{- if or .Values.models.list .Values.models.existingConfigMap }}
- name: NIM_MODELS_FILE
  value: {{ printf "/etc/portico/models/%s" .Values.models.key | quote }}
- name: NIM_MODELS_RESTART
  value: {{ ternary "1" "0" .Values.models.restart | quote }}
{{- end }}
{{- with .Values.env }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The model cache volume (none here for a StatefulSet's volumeClaimTemplate). */}}
{{- define "portico.volumes" -}}
{{- if .Values.persistence.enabled }}
{{- if .Values.persistence.existingClaim }}
- name: nim-cache
  persistentVolumeClaim:
    claimName: {{ .Values.persistence.existingClaim }}
{{- else if not .Values.statefulSet.enabled }}
- name: nim-cache
  persistentVolumeClaim:
    claimName: {{ include "portico.fullname" . }}
{{- end }}
{{- else if .Values.hostPath.enabled }}
- name: nim-cache
  hostPath:
    path: {{ .Values.hostPath.path }}
    type: DirectoryOrCreate
{{- else if .Values.nfs.enabled }}
- name: nim-cache
  nfs:
    server: {{ .Values.nfs.server }}
    path: {{ .Values.nfs.path }}
    readOnly: {{ .Values.nfs.readOnly }}
{{- else }}
- name: nim-cache
  emptyDir: {}
{{- end }}
{{- if .Values.shm.enabled }}
- name: dshm
  emptyDir:
    medium: Memory
    sizeLimit: {{ .Values.shm.sizeLimit }}
{{- end }}
{{- if .Values.apiKeys.existingSecret }}
- name: api-keys
  secret:
    secretName: {{ .Values.apiKeys.existingSecret }}
{{- end }}
{{- if or .Values.models.list .Values.models.existingConfigMap }}
- name: models
  configMap:
    name: {{ .Values.models.existingConfigMap | default (printf "%s-models" (include "portico.fullname" .)) }}
{{- end }}
{{- range $name, $source := .Values.extraVolumes }}
- name: {{ $name }}
  {{- toYaml $source | nindent 2 }}
{{- end }}
{{- end }}

{{- define "portico.volumeMounts" -}}
- name: nim-cache
  mountPath: {{ .Values.model.nimCache }}
{{- if .Values.shm.enabled }}
- name: dshm
  mountPath: /dev/shm
{{- end }}
{{- if .Values.apiKeys.existingSecret }}
- name: api-keys
  mountPath: /etc/portico/api-keys
  readOnly: true
{{- end }}
{{- if or .Values.models.list .Values.models.existingConfigMap }}
- name: models
  mountPath: /etc/portico/models
  readOnly: true
{{- end }}
{{- range $name, $mount := .Values.extraVolumeMounts }}
- name: {{ $name }}
  {{- toYaml $mount | nindent 2 }}
{{- end }}
{{- end }}

{{- define "portico.ports" -}}
- name: http-openai
  containerPort: {{ .Values.model.openaiPort }}
  protocol: TCP
{{- end }}

{{/* Liveness on nginx's own /v1/health/live; readiness and startup on /v1/health/ready. */}}
{{- define "portico.probes" -}}
{{- if .Values.livenessProbe.enabled }}
livenessProbe:
  {{- if eq .Values.livenessProbe.method "script" }}
  exec:
    command:
      {{- toYaml .Values.livenessProbe.command | nindent 6 }}
  {{- else }}
  httpGet:
    path: {{ .Values.livenessProbe.path }}
    port: http-openai
  {{- end }}
  initialDelaySeconds: {{ .Values.livenessProbe.initialDelaySeconds }}
  timeoutSeconds: {{ .Values.livenessProbe.timeoutSeconds }}
  periodSeconds: {{ .Values.livenessProbe.periodSeconds }}
  successThreshold: {{ .Values.livenessProbe.successThreshold }}
  failureThreshold: {{ .Values.livenessProbe.failureThreshold }}
{{- end }}
{{- if .Values.readinessProbe.enabled }}
readinessProbe:
  httpGet:
    path: {{ .Values.readinessProbe.path }}
    port: http-openai
  initialDelaySeconds: {{ .Values.readinessProbe.initialDelaySeconds }}
  timeoutSeconds: {{ .Values.readinessProbe.timeoutSeconds }}
  periodSeconds: {{ .Values.readinessProbe.periodSeconds }}
  successThreshold: {{ .Values.readinessProbe.successThreshold }}
  failureThreshold: {{ .Values.readinessProbe.failureThreshold }}
{{- end }}
{{- if .Values.startupProbe.enabled }}
startupProbe:
  httpGet:
    path: {{ .Values.startupProbe.path }}
    port: http-openai
  initialDelaySeconds: {{ .Values.startupProbe.initialDelaySeconds }}
  timeoutSeconds: {{ .Values.startupProbe.timeoutSeconds }}
  periodSeconds: {{ .Values.startupProbe.periodSeconds }}
  successThreshold: {{ .Values.startupProbe.successThreshold }}
  failureThreshold: {{ .Values.startupProbe.failureThreshold }}
{{- end }}
{{- end }}

{{/* Pod-level settings shared by every pod template. */}}
{{- define "portico.podSettings" -}}
serviceAccountName: {{ include "portico.serviceAccountName" . }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.initContainers.extraInit }}
initContainers:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Pod metadata (labels, annotations) for a role: "" (single node), "leader" or "worker". */}}
{{- define "portico.podMetadata" -}}
{{- $role := .role }}
{{- with .ctx }}
labels:
  {{- include "portico.selectorLabels" . | nindent 2 }}
  {{- with .Values.model.labels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- if $role }}
  app.kubernetes.io/component: {{ $role }}
  {{- end }}
{{- with .Values.podAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- end }}
