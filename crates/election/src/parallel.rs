//! Work split over every core with the answer in input order: the one pattern the registry's load,
//! the offline checker and signature checks share (each item's result depends on that item alone).

/// The cores to split work over (2 when the machine will not say).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// `work` over `items` split evenly across the cores, the results in item order.
pub fn on_every_core<T: Sync, R: Send>(
    items: &[T],
    work: impl Fn(&[T]) -> Vec<R> + Sync,
) -> Vec<R> {
    map_chunks(items, cores(), work)
}

/// Runs `work` on `workers` runs of consecutive items, each on its own thread, and returns the
/// results in item order. A panic in `work` is raised again here, as it was.
pub fn map_chunks<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    work: impl Fn(&[T]) -> Vec<R> + Sync,
) -> Vec<R> {
    let per_worker = items.len().div_ceil(workers.max(1)).max(1);
    let work = &work;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(per_worker)
            .map(|part| scope.spawn(move || work(part)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_item_order_whatever_the_split() {
        let items: Vec<u32> = (0..103).collect();
        for workers in [0, 1, 2, 3, 7, 103, 500] {
            let doubled = map_chunks(&items, workers, |part| part.iter().map(|i| i * 2).collect());
            assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        }
        assert!(map_chunks(&[] as &[u32], 4, |part| part.to_vec()).is_empty());
    }
}
