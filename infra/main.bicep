// What `azd up` provisions for the backup trigger app. Subscription scope: the resource group
// is created here, the app goes into it (app.bicep), and Backup Operator is granted on each
// vault in the vault's own resource group and subscription (vault-access.bicep).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; names the resource group and seeds the resource names.')
param environmentName string

@minLength(1)
@description('Region of every resource; it must offer the Flex Consumption plan.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Comma-separated ids of the Recovery Services vaults the app may back up; it gets Backup Operator on each.')
param backupVaultIds string = ''

@description('Comma-separated principal (object) ids that may put requests on the requests queue (Storage Queue Data Message Sender).')
param producerPrincipalIds string = ''

@description('Comma-separated principal (object) ids that may read and delete results (Storage Queue Data Message Processor).')
param consumerPrincipalIds string = ''

@description('ALLOWED_SUBSCRIPTIONS: comma-separated subscription ids; empty means any.')
param allowedSubscriptions string = ''

@description('ALLOWED_VAULTS: comma-separated vault names or resourceGroup/vault; empty means any.')
param allowedVaults string = ''

@description('DAILY_TRIGGER_LIMITS, e.g. VM=9,AzureFileShare=10; empty turns the check off.')
param dailyTriggerLimits string = ''

@description('Upper bound of Flex Consumption instances. All instances share one identity and so one ARM write budget.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 10

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
// Ids and names never contain spaces, so removing them makes "a, b" as good as "a,b".
var vaultIdList = empty(backupVaultIds) ? [] : split(replace(backupVaultIds, ' ', ''), ',')
var producerList = empty(producerPrincipalIds) ? [] : split(replace(producerPrincipalIds, ' ', ''), ',')
var consumerList = empty(consumerPrincipalIds) ? [] : split(replace(consumerPrincipalIds, ' ', ''), ',')

resource appGroup 'Microsoft.Resources/resourceGroups@2021-04-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module app 'app.bicep' = {
  name: 'backup-app'
  scope: appGroup
  params: {
    location: location
    resourceToken: resourceToken
    tags: tags
    producerPrincipalIds: producerList
    consumerPrincipalIds: consumerList
    allowedSubscriptions: allowedSubscriptions
    allowedVaults: allowedVaults
    dailyTriggerLimits: dailyTriggerLimits
    maximumInstanceCount: maximumInstanceCount
  }
}

// A vault id is /subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.RecoveryServices/vaults/{v}.
module vaultAccess 'vault-access.bicep' = [for vaultId in vaultIdList: {
  name: 'backup-operator-${uniqueString(vaultId)}'
  scope: resourceGroup(split(vaultId, '/')[2], split(vaultId, '/')[4])
  params: {
    vaultName: last(split(vaultId, '/'))
    principalId: app.outputs.identityPrincipalId
  }
}]

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = appGroup.name
output AZURE_FUNCTION_APP_NAME string = app.outputs.functionAppName
output BACKUP_IDENTITY_PRINCIPAL_ID string = app.outputs.identityPrincipalId
output BACKUP_IDENTITY_CLIENT_ID string = app.outputs.identityClientId
output AZURE_STORAGE_ACCOUNT_NAME string = app.outputs.storageAccountName
output AZURE_STORAGE_QUEUE_ENDPOINT string = app.outputs.queueEndpoint
output BACKUP_REQUESTS_QUEUE string = app.outputs.requestsQueue
output BACKUP_RESULTS_QUEUE string = app.outputs.resultsQueue
output APPLICATIONINSIGHTS_NAME string = app.outputs.applicationInsightsName
