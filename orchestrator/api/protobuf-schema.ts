// The messages of k8s.io/api and apimachinery this server decodes from
// protobuf, written from the field numbers of their generated.proto and
// the json tags of their Go types. Each message is one line of fields,
// `NUMBER:json:TYPE` in the Go struct's order:
//
//   TYPE   s string, i int32/int64, b bool, y bytes (base64), q Quantity,
//          is IntOrString, t Time, f FieldsV1, or a message's short name
//   []T    repeated;  {}T  map<string, T>
//   !      keep a zero value: the json tag lacks omitempty, or the Go
//          field is a pointer (gogo writes it only when set)
//   json ^ a struct embedded inline (its fields are the parent's in JSON)
//
// Fields left out are ones no client of ours sends (volume plugins of
// clouds, affinity, ephemeral containers...): sent with a value, they are
// refused by name rather than dropped (protobuf.ts).

import { ProtobufError, decodeMessage, type Envelope, type FieldSchema, type MessageSchema, type Schema, type ValueType } from './protobuf';

const META = 'io.k8s.apimachinery.pkg.apis.meta.v1';
const CORE = 'io.k8s.api.core.v1';
const APPS = 'io.k8s.api.apps.v1';
const AUTOSCALING = 'io.k8s.api.autoscaling.v1';

const MESSAGES: [string, Record<string, string>][] = [
  [META, {
    ObjectMeta: '1:name:s 2:generateName:s 3:namespace:s 4:selfLink:s 5:uid:s 6:resourceVersion:s 7:generation:i 8:creationTimestamp:t 9:deletionTimestamp:t 10:deletionGracePeriodSeconds:i! 11:labels:{}s 12:annotations:{}s 13:ownerReferences:[]OwnerReference 14:finalizers:[]s 17:managedFields:[]ManagedFieldsEntry',
    OwnerReference: '5:apiVersion:s! 1:kind:s! 3:name:s! 4:uid:s! 6:controller:b! 7:blockOwnerDeletion:b!',
    ManagedFieldsEntry: '1:manager:s 2:operation:s 3:apiVersion:s 4:time:t 6:fieldsType:s 7:fieldsV1:f 8:subresource:s',
    LabelSelector: '1:matchLabels:{}s 2:matchExpressions:[]LabelSelectorRequirement',
    LabelSelectorRequirement: '1:key:s! 2:operator:s! 3:values:[]s',
    Condition: '1:type:s! 2:status:s! 3:observedGeneration:i 4:lastTransitionTime:t 5:reason:s! 6:message:s!',
    DeleteOptions: '1:gracePeriodSeconds:i! 2:preconditions:Preconditions 3:orphanDependents:b! 4:propagationPolicy:s! 5:dryRun:[]s 6:ignoreStoreReadErrorWithClusterBreakingPotential:b!',
    Preconditions: '1:uid:s! 2:resourceVersion:s!',
  }],
  [CORE, {
    Namespace: '1:metadata:ObjectMeta 2:spec:NamespaceSpec 3:status:NamespaceStatus',
    NamespaceSpec: '1:finalizers:[]s',
    NamespaceStatus: '1:phase:s 2:conditions:[]NamespaceCondition',
    NamespaceCondition: '1:type:s! 2:status:s! 4:lastTransitionTime:t 5:reason:s 6:message:s',
    ConfigMap: '1:metadata:ObjectMeta 4:immutable:b! 2:data:{}s 3:binaryData:{}y',
    Secret: '1:metadata:ObjectMeta 5:immutable:b! 2:data:{}y 4:stringData:{}s 3:type:s',
    ServiceAccount: '1:metadata:ObjectMeta 2:secrets:[]ObjectReference 3:imagePullSecrets:[]LocalObjectReference 4:automountServiceAccountToken:b!',
    ObjectReference: '1:kind:s 2:namespace:s 3:name:s 4:uid:s 5:apiVersion:s 6:resourceVersion:s 7:fieldPath:s',
    LocalObjectReference: '1:name:s',
    Service: '1:metadata:ObjectMeta 2:spec:ServiceSpec 3:status:ServiceStatus',
    ServiceSpec: '1:ports:[]ServicePort 2:selector:{}s 3:clusterIP:s 18:clusterIPs:[]s 4:type:s 5:externalIPs:[]s 7:sessionAffinity:s 8:loadBalancerIP:s 9:loadBalancerSourceRanges:[]s 10:externalName:s 11:externalTrafficPolicy:s 12:healthCheckNodePort:i 13:publishNotReadyAddresses:b 14:sessionAffinityConfig:SessionAffinityConfig 19:ipFamilies:[]s 17:ipFamilyPolicy:s! 20:allocateLoadBalancerNodePorts:b! 21:loadBalancerClass:s! 22:internalTrafficPolicy:s! 23:trafficDistribution:s!',
    ServicePort: '1:name:s 2:protocol:s 6:appProtocol:s! 3:port:i! 4:targetPort:is 5:nodePort:i',
    SessionAffinityConfig: '1:clientIP:ClientIPConfig',
    ClientIPConfig: '1:timeoutSeconds:i!',
    ServiceStatus: '1:loadBalancer:LoadBalancerStatus 2:conditions:[]Condition',
    LoadBalancerStatus: '1:ingress:[]LoadBalancerIngress',
    LoadBalancerIngress: '1:ip:s 2:hostname:s 3:ipMode:s! 4:ports:[]PortStatus',
    PortStatus: '1:port:i! 2:protocol:s! 3:error:s!',
    ResourceQuota: '1:metadata:ObjectMeta 2:spec:ResourceQuotaSpec 3:status:ResourceQuotaStatus',
    ResourceQuotaSpec: '1:hard:{}q 2:scopes:[]s 3:scopeSelector:ScopeSelector',
    ScopeSelector: '1:matchExpressions:[]ScopedResourceSelectorRequirement',
    ScopedResourceSelectorRequirement: '1:scopeName:s! 2:operator:s! 3:values:[]s',
    ResourceQuotaStatus: '1:hard:{}q 2:used:{}q',
    LimitRange: '1:metadata:ObjectMeta 2:spec:LimitRangeSpec',
    LimitRangeSpec: '1:limits:[]LimitRangeItem',
    LimitRangeItem: '1:type:s! 2:max:{}q 3:min:{}q 4:default:{}q 5:defaultRequest:{}q 6:maxLimitRequestRatio:{}q',
    Endpoints: '1:metadata:ObjectMeta 2:subsets:[]EndpointSubset',
    EndpointSubset: '1:addresses:[]EndpointAddress 2:notReadyAddresses:[]EndpointAddress 3:ports:[]EndpointPort',
    EndpointAddress: '1:ip:s! 3:hostname:s 4:nodeName:s! 2:targetRef:ObjectReference',
    EndpointPort: '1:name:s 2:port:i! 3:protocol:s 4:appProtocol:s!',
    Pod: '1:metadata:ObjectMeta 2:spec:PodSpec 3:status:PodStatus',
    // What clients send when they create a pod is an empty status; the node agent writes the real one in process.
    PodStatus: '',
    PodTemplateSpec: '1:metadata:ObjectMeta 2:spec:PodSpec',
    ReplicationController: '1:metadata:ObjectMeta 2:spec:ReplicationControllerSpec 3:status:ReplicationControllerStatus',
    ReplicationControllerSpec: '1:replicas:i! 4:minReadySeconds:i 2:selector:{}s 3:template:PodTemplateSpec',
    ReplicationControllerStatus: '1:replicas:i! 2:fullyLabeledReplicas:i 4:readyReplicas:i 5:availableReplicas:i 3:observedGeneration:i 6:conditions:[]ReplicationControllerCondition',
    ReplicationControllerCondition: '1:type:s! 2:status:s! 3:lastTransitionTime:t 4:reason:s 5:message:s',
    PodSpec: '1:volumes:[]Volume 20:initContainers:[]Container 2:containers:[]Container 3:restartPolicy:s 4:terminationGracePeriodSeconds:i! 5:activeDeadlineSeconds:i! 6:dnsPolicy:s 7:nodeSelector:{}s 8:serviceAccountName:s 9:serviceAccount:s 21:automountServiceAccountToken:b! 10:nodeName:s 11:hostNetwork:b 12:hostPID:b 13:hostIPC:b 27:shareProcessNamespace:b! 14:securityContext:PodSecurityContext 15:imagePullSecrets:[]LocalObjectReference 16:hostname:s 17:subdomain:s 19:schedulerName:s 22:tolerations:[]Toleration 23:hostAliases:[]HostAlias 24:priorityClassName:s 25:priority:i! 26:dnsConfig:PodDNSConfig 28:readinessGates:[]PodReadinessGate 29:runtimeClassName:s! 30:enableServiceLinks:b! 31:preemptionPolicy:s! 32:overhead:{}q 35:setHostnameAsFQDN:b! 36:os:PodOS 37:hostUsers:b!',
    PodOS: '1:name:s!',
    Container: '1:name:s! 2:image:s 3:command:[]s 4:args:[]s 5:workingDir:s 6:ports:[]ContainerPort 19:envFrom:[]EnvFromSource 7:env:[]EnvVar 8:resources:ResourceRequirements 23:resizePolicy:[]ContainerResizePolicy 24:restartPolicy:s! 9:volumeMounts:[]VolumeMount 10:livenessProbe:Probe 11:readinessProbe:Probe 22:startupProbe:Probe 12:lifecycle:Lifecycle 13:terminationMessagePath:s 20:terminationMessagePolicy:s 14:imagePullPolicy:s 15:securityContext:SecurityContext 16:stdin:b 17:stdinOnce:b 18:tty:b',
    ContainerPort: '1:name:s 2:hostPort:i 3:containerPort:i! 4:protocol:s 5:hostIP:s',
    ContainerResizePolicy: '1:resourceName:s! 2:restartPolicy:s!',
    EnvVar: '1:name:s! 2:value:s 3:valueFrom:EnvVarSource',
    EnvVarSource: '1:fieldRef:ObjectFieldSelector 2:resourceFieldRef:ResourceFieldSelector 3:configMapKeyRef:ConfigMapKeySelector 4:secretKeyRef:SecretKeySelector',
    ObjectFieldSelector: '1:apiVersion:s 2:fieldPath:s!',
    ResourceFieldSelector: '1:containerName:s 2:resource:s! 3:divisor:q',
    ConfigMapKeySelector: '1:^:LocalObjectReference 2:key:s! 3:optional:b!',
    SecretKeySelector: '1:^:LocalObjectReference 2:key:s! 3:optional:b!',
    EnvFromSource: '1:prefix:s 2:configMapRef:ConfigMapEnvSource 3:secretRef:SecretEnvSource',
    ConfigMapEnvSource: '1:^:LocalObjectReference 2:optional:b!',
    SecretEnvSource: '1:^:LocalObjectReference 2:optional:b!',
    ResourceRequirements: '1:limits:{}q 2:requests:{}q 3:claims:[]ResourceClaim',
    ResourceClaim: '1:name:s! 2:request:s',
    VolumeMount: '1:name:s! 2:readOnly:b 7:recursiveReadOnly:s! 3:mountPath:s! 4:subPath:s 5:mountPropagation:s! 6:subPathExpr:s',
    Volume: '1:name:s! 2:^:VolumeSource',
    VolumeSource: '1:hostPath:HostPathVolumeSource 2:emptyDir:EmptyDirVolumeSource 6:secret:SecretVolumeSource 10:persistentVolumeClaim:PersistentVolumeClaimVolumeSource 16:downwardAPI:DownwardAPIVolumeSource 19:configMap:ConfigMapVolumeSource 26:projected:ProjectedVolumeSource',
    HostPathVolumeSource: '1:path:s! 2:type:s!',
    EmptyDirVolumeSource: '1:medium:s 2:sizeLimit:q',
    SecretVolumeSource: '1:secretName:s 2:items:[]KeyToPath 3:defaultMode:i! 4:optional:b!',
    ConfigMapVolumeSource: '1:^:LocalObjectReference 2:items:[]KeyToPath 3:defaultMode:i! 4:optional:b!',
    KeyToPath: '1:key:s! 2:path:s! 3:mode:i!',
    PersistentVolumeClaimVolumeSource: '1:claimName:s! 2:readOnly:b',
    DownwardAPIVolumeSource: '1:items:[]DownwardAPIVolumeFile 2:defaultMode:i!',
    DownwardAPIVolumeFile: '1:path:s! 2:fieldRef:ObjectFieldSelector 3:resourceFieldRef:ResourceFieldSelector 4:mode:i!',
    ProjectedVolumeSource: '1:sources:[]VolumeProjection 2:defaultMode:i!',
    VolumeProjection: '1:secret:SecretProjection 2:downwardAPI:DownwardAPIProjection 3:configMap:ConfigMapProjection 4:serviceAccountToken:ServiceAccountTokenProjection',
    SecretProjection: '1:^:LocalObjectReference 2:items:[]KeyToPath 4:optional:b!',
    ConfigMapProjection: '1:^:LocalObjectReference 2:items:[]KeyToPath 4:optional:b!',
    DownwardAPIProjection: '1:items:[]DownwardAPIVolumeFile',
    ServiceAccountTokenProjection: '1:audience:s 2:expirationSeconds:i! 3:path:s!',
    Probe: '1:^:ProbeHandler 2:initialDelaySeconds:i 3:timeoutSeconds:i 4:periodSeconds:i 5:successThreshold:i 6:failureThreshold:i 7:terminationGracePeriodSeconds:i!',
    ProbeHandler: '1:exec:ExecAction 2:httpGet:HTTPGetAction 3:tcpSocket:TCPSocketAction 4:grpc:GRPCAction',
    ExecAction: '1:command:[]s',
    HTTPGetAction: '1:path:s 2:port:is 3:host:s 4:scheme:s 5:httpHeaders:[]HTTPHeader',
    HTTPHeader: '1:name:s! 2:value:s!',
    TCPSocketAction: '1:port:is 2:host:s',
    GRPCAction: '1:port:i! 2:service:s!',
    Lifecycle: '1:postStart:LifecycleHandler 2:preStop:LifecycleHandler 3:stopSignal:s!',
    LifecycleHandler: '1:exec:ExecAction 2:httpGet:HTTPGetAction 3:tcpSocket:TCPSocketAction 4:sleep:SleepAction',
    SleepAction: '1:seconds:i!',
    SecurityContext: '1:capabilities:Capabilities 2:privileged:b! 3:seLinuxOptions:SELinuxOptions 4:runAsUser:i! 8:runAsGroup:i! 5:runAsNonRoot:b! 6:readOnlyRootFilesystem:b! 7:allowPrivilegeEscalation:b! 9:procMount:s! 11:seccompProfile:SeccompProfile 12:appArmorProfile:AppArmorProfile',
    Capabilities: '1:add:[]s 2:drop:[]s',
    SELinuxOptions: '1:user:s 2:role:s 3:type:s 4:level:s',
    SeccompProfile: '1:type:s! 2:localhostProfile:s!',
    AppArmorProfile: '1:type:s! 2:localhostProfile:s!',
    PodSecurityContext: '1:seLinuxOptions:SELinuxOptions 2:runAsUser:i! 6:runAsGroup:i! 3:runAsNonRoot:b! 4:supplementalGroups:[]i 12:supplementalGroupsPolicy:s! 5:fsGroup:i! 7:sysctls:[]Sysctl 9:fsGroupChangePolicy:s! 10:seccompProfile:SeccompProfile 11:appArmorProfile:AppArmorProfile 13:seLinuxChangePolicy:s!',
    Sysctl: '1:name:s! 2:value:s!',
    Toleration: '1:key:s 2:operator:s 3:value:s 4:effect:s 5:tolerationSeconds:i!',
    HostAlias: '1:ip:s! 2:hostnames:[]s',
    PodDNSConfig: '1:nameservers:[]s 2:searches:[]s 3:options:[]PodDNSConfigOption',
    PodDNSConfigOption: '1:name:s 2:value:s!',
    PodReadinessGate: '1:conditionType:s!',
    PersistentVolumeClaim: '1:metadata:ObjectMeta 2:spec:PersistentVolumeClaimSpec 3:status:PersistentVolumeClaimStatus',
    PersistentVolumeClaimSpec: '1:accessModes:[]s 4:selector:LabelSelector 2:resources:VolumeResourceRequirements 3:volumeName:s 5:storageClassName:s! 6:volumeMode:s! 7:dataSource:TypedLocalObjectReference 8:dataSourceRef:TypedObjectReference 9:volumeAttributesClassName:s!',
    VolumeResourceRequirements: '1:limits:{}q 2:requests:{}q',
    TypedLocalObjectReference: '1:apiGroup:s! 2:kind:s! 3:name:s!',
    TypedObjectReference: '1:apiGroup:s! 2:kind:s! 3:name:s! 4:namespace:s!',
    PersistentVolumeClaimStatus: '1:phase:s 2:accessModes:[]s 3:capacity:{}q',
  }],
  [APPS, {
    Deployment: '1:metadata:ObjectMeta 2:spec:DeploymentSpec 3:status:DeploymentStatus',
    DeploymentSpec: '1:replicas:i! 2:selector:LabelSelector 3:template:PodTemplateSpec 4:strategy:DeploymentStrategy 5:minReadySeconds:i 6:revisionHistoryLimit:i! 7:paused:b 9:progressDeadlineSeconds:i!',
    DeploymentStrategy: '1:type:s 2:rollingUpdate:RollingUpdateDeployment',
    RollingUpdateDeployment: '1:maxUnavailable:is 2:maxSurge:is',
    DeploymentStatus: '1:observedGeneration:i 2:replicas:i 3:updatedReplicas:i 7:readyReplicas:i 4:availableReplicas:i 5:unavailableReplicas:i 9:terminatingReplicas:i! 6:conditions:[]DeploymentCondition 8:collisionCount:i!',
    DeploymentCondition: '1:type:s! 2:status:s! 6:lastUpdateTime:t 7:lastTransitionTime:t 4:reason:s 5:message:s',
    ReplicaSet: '1:metadata:ObjectMeta 2:spec:ReplicaSetSpec 3:status:ReplicaSetStatus',
    ReplicaSetSpec: '1:replicas:i! 4:minReadySeconds:i 2:selector:LabelSelector 3:template:PodTemplateSpec',
    ReplicaSetStatus: '1:replicas:i! 2:fullyLabeledReplicas:i 4:readyReplicas:i 5:availableReplicas:i 7:terminatingReplicas:i! 3:observedGeneration:i 6:conditions:[]ReplicaSetCondition',
    ReplicaSetCondition: '1:type:s! 2:status:s! 3:lastTransitionTime:t 4:reason:s 5:message:s',
    StatefulSet: '1:metadata:ObjectMeta 2:spec:StatefulSetSpec 3:status:StatefulSetStatus',
    StatefulSetSpec: '1:replicas:i! 2:selector:LabelSelector 3:template:PodTemplateSpec 4:volumeClaimTemplates:[]PersistentVolumeClaim 5:serviceName:s! 6:podManagementPolicy:s 7:updateStrategy:StatefulSetUpdateStrategy 8:revisionHistoryLimit:i! 9:minReadySeconds:i 10:persistentVolumeClaimRetentionPolicy:StatefulSetPersistentVolumeClaimRetentionPolicy 11:ordinals:StatefulSetOrdinals',
    StatefulSetUpdateStrategy: '1:type:s 2:rollingUpdate:RollingUpdateStatefulSetStrategy',
    RollingUpdateStatefulSetStrategy: '1:partition:i! 2:maxUnavailable:is',
    StatefulSetPersistentVolumeClaimRetentionPolicy: '1:whenDeleted:s 2:whenScaled:s',
    StatefulSetOrdinals: '1:start:i!',
    StatefulSetStatus: '1:observedGeneration:i 2:replicas:i! 3:readyReplicas:i 4:currentReplicas:i 5:updatedReplicas:i 6:currentRevision:s 7:updateRevision:s 9:collisionCount:i! 10:conditions:[]StatefulSetCondition 11:availableReplicas:i!',
    StatefulSetCondition: '1:type:s! 2:status:s! 3:lastTransitionTime:t 4:reason:s 5:message:s',
  }],
  [AUTOSCALING, {
    Scale: '1:metadata:ObjectMeta 2:spec:ScaleSpec 3:status:ScaleStatus',
    ScaleSpec: '1:replicas:i',
    ScaleStatus: '1:replicas:i! 2:selector:s',
  }],
];

/** The kinds decoded, by apiVersion and kind: the top-level message of each. DeleteOptions comes in any group's version. */
const KINDS: Record<string, string> = {
  'v1/Namespace': 'Namespace', 'v1/ConfigMap': 'ConfigMap', 'v1/Secret': 'Secret', 'v1/ServiceAccount': 'ServiceAccount',
  'v1/Service': 'Service', 'v1/ResourceQuota': 'ResourceQuota', 'v1/LimitRange': 'LimitRange', 'v1/Endpoints': 'Endpoints',
  'v1/Pod': 'Pod', 'v1/ReplicationController': 'ReplicationController',
  'apps/v1/Deployment': 'Deployment', 'apps/v1/ReplicaSet': 'ReplicaSet', 'apps/v1/StatefulSet': 'StatefulSet',
  'autoscaling/v1/Scale': 'Scale',
};

const SCALARS: Record<string, ValueType> = { s: 'string', i: 'int', b: 'bool', y: 'bytes', q: 'quantity', is: 'intstr', t: 'time', f: 'fieldsV1' };

function parseField(token: string, message: string): [number, FieldSchema] {
  const m = /^(\d+):(\^|[A-Za-z0-9]+):(\[\]|\{\})?([A-Za-z0-9]+)(!?)$/.exec(token);
  if (!m) throw new Error(`protobuf schema: bad field "${token}" in ${message}`);
  const [, no, json, shape, type, keep] = m as unknown as [string, string, string, string | undefined, string, string];
  const field: FieldSchema = {
    json: json === '^' ? '' : json,
    type: SCALARS[type] ?? { message: type },
    shape: shape === '[]' ? 'list' : shape === '{}' ? 'map' : 'one',
    keep: keep === '!',
  };
  return [Number(no), field];
}

function build(): Schema {
  const schema = new Map<string, MessageSchema>();
  for (const [pkg, messages] of MESSAGES) {
    for (const [short, spec] of Object.entries(messages)) {
      if (schema.has(short)) throw new Error(`protobuf schema: ${short} is defined twice`);
      const fields = new Map<number, FieldSchema>();
      for (const token of spec.split(/\s+/).filter(Boolean)) {
        const [no, f] = parseField(token, short);
        if (fields.has(no)) throw new Error(`protobuf schema: field ${no} of ${short} is defined twice`);
        fields.set(no, f);
      }
      schema.set(short, { name: `${pkg}.${short}`, fields });
    }
  }
  // Every message a field names must be in the table: a typo fails at load, not at a client's request.
  for (const m of schema.values()) {
    for (const f of m.fields.values()) {
      if (typeof f.type === 'object' && !schema.has(f.type.message)) throw new Error(`protobuf schema: ${m.name} names an unknown message ${f.type.message}`);
    }
  }
  return schema;
}

export const SCHEMA: Schema = build();

/** The top-level message of a kind, or undefined when it is not decoded here. */
export function messageOf(apiVersion: string, kind: string): string | undefined {
  if (kind === 'DeleteOptions') return 'DeleteOptions';
  return KINDS[`${apiVersion}/${kind}`];
}

/**
 * The object in a runtime.Unknown envelope as the JSON kubectl would have
 * sent: kind and apiVersion from the envelope (the raw object carries no
 * TypeMeta in protobuf), then its fields; null for a kind not in the
 * table. Throws ProtobufError for a malformed object or a field the table
 * does not know.
 */
export function decodeObject(env: Envelope): Record<string, unknown> | null {
  const type = messageOf(env.apiVersion, env.kind);
  if (!type) return null;
  if (env.contentEncoding !== '') throw new ProtobufError(`content encoding "${env.contentEncoding}" of the raw object is not supported`, '');
  return { kind: env.kind, apiVersion: env.apiVersion, ...decodeMessage(SCHEMA, type, env.raw) };
}
