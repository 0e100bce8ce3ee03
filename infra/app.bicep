// The app in its resource group: the user-assigned identity, its storage and monitoring
// (storage.bicep, monitoring.bicep, which also grant it their roles), and the Flex Consumption
// plan and function app with every app setting. Nothing here holds a key or a connection
// string with one.

param location string
param resourceToken string
param tags object
param producerPrincipalIds array
param consumerPrincipalIds array
param allowedSubscriptions string
param allowedVaults string
param dailyTriggerLimits string
param maximumInstanceCount int

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-backup-${resourceToken}'
  location: location
  tags: tags
}

module storage 'storage.bicep' = {
  name: 'backup-storage'
  params: {
    location: location
    resourceToken: resourceToken
    tags: tags
    appPrincipalId: identity.properties.principalId
    producerPrincipalIds: producerPrincipalIds
    consumerPrincipalIds: consumerPrincipalIds
  }
}

module monitoring 'monitoring.bicep' = {
  name: 'backup-monitoring'
  params: {
    location: location
    resourceToken: resourceToken
    tags: tags
    appPrincipalId: identity.properties.principalId
  }
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-backup-${resourceToken}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

// Every setting the functions read (shared/settings.py and each %SETTING% of a function.json),
// at the README's defaults. Flex Consumption takes the runtime from functionAppConfig and
// refuses FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION as app settings.
var appSettings = {
  // The host's and the app's storage, by identity: no key exists to leak.
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.properties.clientId
  AzureWebJobsStorage__blobServiceUri: storage.outputs.blobEndpoint
  AzureWebJobsStorage__queueServiceUri: storage.outputs.queueEndpoint
  AzureWebJobsStorage__tableServiceUri: storage.outputs.tableEndpoint
  // DefaultAzureCredential (the ARM calls) picks the user-assigned identity by this client id;
  // without it the platform would look for a system-assigned identity that does not exist.
  AZURE_CLIENT_ID: identity.properties.clientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.connectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.properties.clientId};Authorization=AAD'
  BACKUP_REQUESTS_QUEUE: storage.outputs.requestsQueue
  BACKUP_STATUS_QUEUE: storage.outputs.statusQueue
  BACKUP_RESULTS_QUEUE: storage.outputs.resultsQueue
  BACKUP_LEDGER_TABLE: storage.outputs.ledgerTable
  LEDGER_RETENTION_DAYS: '30'
  // environment().name is AzureCloud, AzureUSGovernment or AzureChinaCloud: the app's own names.
  AZURE_CLOUD: environment().name
  BACKUP_API_VERSION: '2024-04-01'
  ALLOWED_SUBSCRIPTIONS: allowedSubscriptions
  ALLOWED_VAULTS: allowedVaults
  TRACK_BACKUP_JOBS: 'true'
  DAILY_TRIGGER_LIMITS: dailyTriggerLimits
  BATCH_TRIGGERS_PER_MINUTE: '60'
  BATCH_MAX_ITEMS: '1000'
  MIN_DELAY_SECONDS: '5'
  POLL_INTERVAL_SECONDS: '30'
  JOB_POLL_INITIAL_SECONDS: '60'
  JOB_POLL_MAX_SECONDS: '900'
  RETRY_MAX_ATTEMPTS: '8'
  RETRY_BASE_SECONDS: '10'
  RETRY_MAX_SECONDS: '600'
  OPERATION_TIMEOUT_SECONDS: '21600'
  JOB_TIMEOUT_SECONDS: '172800'
  HTTP_CONNECT_TIMEOUT_SECONDS: '10'
  HTTP_READ_TIMEOUT_SECONDS: '60'
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: 'func-backup-${resourceToken}'
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identity.id
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: storage.outputs.deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: 2048
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [for setting in items(appSettings): {
        name: setting.key
        value: setting.value
      }]
    }
  }
}

output functionAppName string = functionApp.name
output identityPrincipalId string = identity.properties.principalId
output identityClientId string = identity.properties.clientId
output storageAccountName string = storage.outputs.name
output queueEndpoint string = storage.outputs.queueEndpoint
output requestsQueue string = storage.outputs.requestsQueue
output resultsQueue string = storage.outputs.resultsQueue
output applicationInsightsName string = monitoring.outputs.name
