//! The setup plan of a run: every tenant registered with the proxy, with one SMTP account
//! delivering to the run's SMTP server. Tenant id = tenant name; the operator's setup Job and the
//! local runner send the same plan, with their own addresses.

use mailproxy_proto::admin::{AccountV1, SetupPlanV1, SetupTenantV1, TenantV1};

/// The plan for `tenants` (name, base URL of its client application), delivering to
/// `smtp_host:smtp_port`.
pub fn plan<'a>(
    tenants: impl IntoIterator<Item = (&'a str, String)>,
    smtp_host: &str,
    smtp_port: u16,
) -> SetupPlanV1 {
    SetupPlanV1 {
        tenants: tenants
            .into_iter()
            .map(|(name, url)| SetupTenantV1 {
                tenant: TenantV1 {
                    id: name.to_string(),
                    name: Some(format!("{name} tenant")),
                    active: Some(true),
                    client_base_url: Some(url),
                    client_sync_path: Some("/sync".into()),
                    client_attachment_path: Some("/attachments".into()),
                    default_account_id: Some(format!("smtp-{name}")),
                },
                accounts: vec![AccountV1 {
                    id: format!("smtp-{name}"),
                    tenant_id: name.to_string(),
                    smtp_host: smtp_host.into(),
                    smtp_port,
                    smtp_user: Some("test".into()),
                    smtp_password: Some("test".into()),
                    sender_email: Some(format!("noreply@{name}.test")),
                    use_tls: Some(false),
                    use_ssl: Some(false),
                    batch_size: None,
                }],
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_tenant_one_account_delivering_to_the_smtp_server() {
        let p = plan(
            [
                ("a", "http://a:1".to_string()),
                ("b", "http://b:2".to_string()),
            ],
            "sink",
            2525,
        );
        assert_eq!(p.tenants.len(), 2);
        let b = &p.tenants[1];
        assert_eq!(b.tenant.id, "b");
        assert_eq!(b.tenant.client_base_url.as_deref(), Some("http://b:2"));
        assert_eq!(b.tenant.default_account_id.as_deref(), Some("smtp-b"));
        let acc = &b.accounts[0];
        assert_eq!((acc.id.as_str(), acc.tenant_id.as_str()), ("smtp-b", "b"));
        assert_eq!((acc.smtp_host.as_str(), acc.smtp_port), ("sink", 2525));
    }
}
