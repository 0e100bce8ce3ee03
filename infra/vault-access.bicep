// Backup Operator for the app's identity on one Recovery Services vault, deployed into the
// vault's own resource group (and subscription): trigger backups, read operations and jobs.

@description('Name of an existing Recovery Services vault in this resource group.')
param vaultName string

@description('Principal (object) id of the app identity.')
param principalId string

var backupOperator = '00c29273-979b-4161-815c-10b084fb9324'

resource vault 'Microsoft.RecoveryServices/vaults@2024-04-01' existing = {
  name: vaultName
}

resource backupOperatorOnVault 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, backupOperator)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', backupOperator)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
