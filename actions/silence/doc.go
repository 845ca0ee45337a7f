// Package silence implements the alertmanager.silence action through the
// Alertmanager API v2 client.
package silence

import (
	_ "github.com/go-openapi/strfmt"
	_ "github.com/prometheus/alertmanager/api/v2/client"
	_ "github.com/prometheus/alertmanager/api/v2/models"
)
