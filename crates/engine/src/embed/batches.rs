//! Which inputs of an embedding request run together. Inputs are sorted by length so a
//! batch's rows are left-padded little; a batch is capped in rows and in padded tokens
//! (which bound its key/value cache), and an input longer than the token cap runs alone.

/// Most inputs in one batch.
pub const MAX_ROWS: usize = 32;
/// Most positions in one batch, padding included.
pub const MAX_TOKENS: usize = 8192;

/// Groups of indices into `lengths`, shortest inputs first; every index appears once.
pub fn batches(lengths: &[usize]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| lengths[i]);
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for i in order {
        match groups.last_mut() {
            // Sorted, so `i` is the longest so far: the padded size is rows × its length.
            Some(group)
                if group.len() < MAX_ROWS && (group.len() + 1) * lengths[i] <= MAX_TOKENS =>
            {
                group.push(i)
            }
            _ => groups.push(vec![i]),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_lengths_share_a_batch_and_every_input_is_in_one() {
        let lengths = [5, 300, 7, 6, 290];
        let groups = batches(&lengths);
        assert_eq!(groups, vec![vec![0, 3, 2, 4, 1]]);
        let mut seen: Vec<usize> = groups.concat();
        seen.sort();
        assert_eq!(seen, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn batches_stay_under_the_row_and_token_caps() {
        let many = vec![10; MAX_ROWS * 2 + 1];
        let groups = batches(&many);
        assert_eq!(
            groups.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![MAX_ROWS, MAX_ROWS, 1]
        );

        let long = [
            MAX_TOKENS / 2,
            MAX_TOKENS / 2,
            MAX_TOKENS / 2 + 1,
            MAX_TOKENS * 3,
        ];
        let groups = batches(&long);
        assert_eq!(groups, vec![vec![0, 1], vec![2], vec![3]]);
    }
}
