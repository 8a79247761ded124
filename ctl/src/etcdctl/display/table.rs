//! The `table` format: the boxes olekukonko/tablewriter draws for etcdctl, with upper-case
//! centred headers and every cell right-aligned.

use etcd_proto::etcdserverpb::MemberListResponse;

use super::{
    hashkv_rows, health_rows, member_rows, snapshot_rows, status_rows, EpHashKv, EpHealth,
    EpStatus, Print, Printed, Printer, SnapshotStatus,
};

/// Prints the table format.
pub struct Table;

/// Draws a table.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let width = |s: &str| s.chars().count();
    let widths: Vec<usize> = header
        .iter()
        .enumerate()
        .map(|(i, h)| {
            rows.iter()
                .map(|r| width(&r[i]))
                .chain([width(h)])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let border = widths
        .iter()
        .fold(String::from("+"), |acc, w| acc + &"-".repeat(w + 2) + "+")
        + "\n";
    let mut out = border.clone();
    out.push('|');
    for (h, w) in header.iter().zip(&widths) {
        let h = h.to_uppercase();
        let gap = w - width(&h);
        let left = gap / 2;
        out.push_str(&format!(
            " {}{h}{} |",
            " ".repeat(left),
            " ".repeat(gap - left)
        ));
    }
    out.push('\n');
    out.push_str(&border);
    for row in rows {
        out.push('|');
        for (cell, w) in row.iter().zip(&widths) {
            out.push_str(&format!(" {}{cell} |", " ".repeat(w - width(cell))));
        }
        out.push('\n');
    }
    if !rows.is_empty() {
        out.push_str(&border);
    }
    out
}

fn table((header, rows): (Vec<&'static str>, Vec<Vec<String>>)) -> Print {
    Ok(Printed::out(render(&header, &rows)))
}

impl Printer for Table {
    fn name(&self) -> &'static str {
        "table"
    }

    fn member_list(&self, r: &MemberListResponse) -> Print {
        table(member_rows(r))
    }

    fn endpoint_health(&self, checks: &[EpHealth]) -> Print {
        table(health_rows(checks))
    }

    fn endpoint_status(&self, statuses: &[EpStatus]) -> Print {
        table(status_rows(statuses))
    }

    fn endpoint_hashkv(&self, hashes: &[EpHashKv]) -> Print {
        table(hashkv_rows(hashes))
    }

    fn snapshot_status(&self, s: &SnapshotStatus) -> Print {
        table(snapshot_rows(s))
    }
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn draws_like_tablewriter() {
        let rows = vec![vec![
            "127.0.0.1:23790".to_string(),
            "1611792415".to_string(),
        ]];
        assert_eq!(
            render(&["endpoint", "hash"], &rows),
            "+-----------------+------------+\n\
             |    ENDPOINT     |    HASH    |\n\
             +-----------------+------------+\n\
             | 127.0.0.1:23790 | 1611792415 |\n\
             +-----------------+------------+\n"
        );
    }
}
